"""The OHIF viewer, built in: installing its pinned npm build and serving it with a generated
configuration (``dicomite viewer install``, ``{public_url}/viewer/``)."""
