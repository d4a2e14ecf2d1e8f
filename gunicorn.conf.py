# Read by gunicorn from the directory it starts in (its default --config): settings every
# deployment needs. The access log never holds a password reset token (config/gunicorn.py).
logger_class = "config.gunicorn.RedactingLogger"
