"""ipt-workflow: event-sourced treatment records of IPT cases."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("ipt-workflow")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0"
