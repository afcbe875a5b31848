"""Static HTML reports rendered with Jinja2 (autoescape on: target-controlled text is never markup)."""
