"""Dicomite: a self-hosted DICOMweb service with its own Entra-ID-compatible identity platform."""

__version__ = "0.1.0"
