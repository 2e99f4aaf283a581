"""The bundled templates: from the installed package `kubectl_preevy.templates` (wheel, zipapp), else
from `<checkout>/templates/` when running from a checkout (`./kubectl-preevy` puts src/ on sys.path)."""

import pathlib

TEMPLATES_PACKAGE = "kubectl_preevy.templates"
DEFAULT_TEMPLATE = "default.yaml.njk"
PREEVY_VARIANT = "preevy"  # Preevy's own default template, object for object (same template hash)
TEMPLATE_VARIANTS = {
    "default": DEFAULT_TEMPLATE,
    "sysbox": "sysbox.yaml.njk",
    PREEVY_VARIANT: "preevy.yaml.njk",
}
CHECKOUT_TEMPLATES = pathlib.Path(__file__).resolve().parents[2] / "templates"


def template_text(name: str) -> str:
    """The text of a bundled template, e.g. template_text("default.yaml.njk")."""
    import importlib.resources

    try:
        return importlib.resources.files(TEMPLATES_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError):
        return (CHECKOUT_TEMPLATES / name).read_text(encoding="utf-8")


def template_display_name(name: str) -> str:
    """How errors name a bundled template."""
    return f"(bundled) {name}"
