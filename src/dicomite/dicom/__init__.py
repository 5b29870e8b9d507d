"""The DICOM service: DICOMweb (PS3.18) STOW, QIDO, WADO, delete and change feed."""
