"""The small Azure Resource Manager surface ``az`` needs: the cloud's endpoints, the one
subscription that stands for this deployment, and its tenant."""
