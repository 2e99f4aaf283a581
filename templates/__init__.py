"""The bundled environment templates (installed as the package `kubectl_preevy.templates`)."""
