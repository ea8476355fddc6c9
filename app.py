"""Flask entry point: ``flask --app app run`` or any WSGI server pointing at ``app:application``."""
