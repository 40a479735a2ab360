"""`python -m n3_notebook doctor`: what works from this machine, provider by provider.

Sits beside chain/ above providers/: it builds providers and probes the network under
them. Importing it imports no IPython."""

from .probes import Probe
from .report import DoctorReport, ProviderCheck
from .run import run_doctor

__all__ = ["DoctorReport", "Probe", "ProviderCheck", "run_doctor"]
