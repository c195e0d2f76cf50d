"""The explorer pattern that every interactive figure of the course follows.

An explorer has three parts, kept apart so that each can be tested and reused:

1. a **pure state function** ``state(**settings) -> dict`` that computes everything the figure
   shows and raises ``ValueError`` (naming the setting and the rule) for an invalid setting;
2. a **draw function** ``draw(state, fig)`` that draws that state into a matplotlib figure;
3. the **controls**, a dict of ipywidgets whose ``.value``s are the settings.

``Explorer(state, draw, controls)`` wires them together. It shows the figure as a PNG inside an
``ipywidgets.Image`` (so it updates in place in JupyterLab) and carries the same PNG as a static
fallback in its output, so nbval, HTML export and a notebook opened without a kernel still show a
useful figure. An invalid setting shows its message in place of the figure, never a traceback.
"""

import base64
import html
import io
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as widgets
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

__all__ = ["figure_png", "message_png", "Explorer", "int_slider", "float_slider", "dropdown"]


def figure_png(fig: Figure, dpi: int = 90) -> bytes:
    """PNG bytes of a matplotlib figure (the figure is closed afterwards)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def message_png(text: str, width: float = 6.0, height: float = 1.2) -> bytes:
    """A figure that only says ``text``: shown instead of a plot when the settings are invalid."""
    fig = plt.figure(figsize=(width, height))
    fig.text(0.02, 0.5, text, va="center", ha="left", fontsize=11, color="#a00000", wrap=True)
    return figure_png(fig)


class Explorer(widgets.VBox):
    """Controls + message line + figure, recomputed whenever a control changes.

    ``state_fn(**settings)`` must be pure; ``draw_fn(state, fig)`` draws into the given figure;
    ``readout_fn(state)`` (optional) returns a short HTML string shown above the figure.
    """

    def __init__(
        self,
        state_fn: Callable[..., Any],
        draw_fn: Callable[[Any, Figure], Any],
        controls: Mapping[str, widgets.ValueWidget],
        *,
        title: str = "",
        readout_fn: Callable[[Any], str] | None = None,
        figsize: tuple = (9, 4),
        dpi: int = 90,
    ) -> None:
        self.state_fn, self.draw_fn, self.readout_fn = state_fn, draw_fn, readout_fn
        self.controls, self.figsize, self.dpi = dict(controls), figsize, dpi
        self.title = widgets.HTML(f"<b>{html.escape(title)}</b>" if title else "")
        self.message = widgets.HTML()
        self.readout = widgets.HTML()
        self.image = widgets.Image(format="png")
        self.state: Any = None  # the last valid state (None while the settings are invalid)
        self.error: str | None = None  # the message of the invalid setting, else None
        self._paused = False
        box = widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap"))
        super().__init__([self.title, box, self.message, self.readout, self.image])
        for control in self.controls.values():
            control.observe(self._on_change, names="value")
        self.refresh()

    def _on_change(self, change: dict) -> None:
        if not self._paused:
            self.refresh()

    def settings(self) -> dict:
        """The controls' current values, by setting name."""
        return {name: control.value for name, control in self.controls.items()}

    def set(self, **settings: Any) -> "Explorer":
        """Change several controls at once (tests and notebooks use this), then redraw once."""
        unknown = set(settings) - set(self.controls)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; this explorer has {sorted(self.controls)}")
        self._paused = True
        try:
            for name, value in settings.items():
                self.controls[name].value = value
        finally:
            self._paused = False
        self.refresh()
        return self

    def refresh(self) -> None:
        """Recompute the state from the controls and redraw (or show the invalid setting's message)."""
        try:
            self.state, self.error = self.state_fn(**self.settings()), None
        except (ValueError, TypeError) as err:
            self.state, self.error = None, str(err)
            self.message.value = f"<span style='color:#a00000'>⚠ {html.escape(str(err))}</span>"
            self.readout.value = ""
            self.image.value = message_png(str(err))
            return
        self.message.value = ""
        self.readout.value = self.readout_fn(self.state) if self.readout_fn else ""
        fig = plt.figure(figsize=self.figsize)
        self.draw_fn(self.state, fig)
        self.image.value = figure_png(fig, self.dpi)

    def _repr_mimebundle_(self, **kwargs):
        """The widget for JupyterLab, plus the current figure as a static PNG for everyone else."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["image/png"] = base64.b64encode(self.image.value).decode("ascii")
        lines = [self.title.value, self.error or "", self.readout.value]
        data["text/plain"] = " | ".join(html.unescape(_strip_tags(s)) for s in lines if s)
        return bundle


def _strip_tags(text: str) -> str:
    return re.sub(r"<[^>]+>", "", text)


# Small control makers, so that every explorer looks the same.


def int_slider(description: str, value: int, min: int, max: int, step: int = 1) -> widgets.IntSlider:
    """An integer slider that updates on release, with the course's label style."""
    return widgets.IntSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
    )


def float_slider(description: str, value: float, min: float, max: float, step: float = 0.01) -> widgets.FloatSlider:
    """A float slider that updates on release, with the course's label style."""
    return widgets.FloatSlider(
        value=value,
        min=min,
        max=max,
        step=step,
        description=description,
        continuous_update=False,
        style={"description_width": "initial"},
    )


def dropdown(description: str, options: Sequence | Mapping[str, Any], value: Any = None) -> widgets.Dropdown:
    """A drop-down list (first option selected unless ``value``), with the course's label style.

    ``options``: the values, or ``{label: value}``."""
    first = next(iter(options.values())) if isinstance(options, Mapping) else list(options)[0]
    return widgets.Dropdown(
        options=options,
        value=value if value is not None else first,
        description=description,
        style={"description_width": "initial"},
    )
