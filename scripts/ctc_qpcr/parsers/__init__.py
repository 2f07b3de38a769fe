"""Instrument export readers. See :func:`ctc_qpcr.parsers.registry.read_export`."""
