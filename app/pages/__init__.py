"""Dash pages, one per file, each registered with ``dash.register_page`` and guarded by ``requires``."""
