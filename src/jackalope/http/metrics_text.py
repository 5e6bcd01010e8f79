"""The Prometheus text format for the metrics endpoints: metric families built from plain
values, and a writer that produces what ``prometheus_client.generate_latest`` produces for
them, byte for byte, faster.

Families with one sample per object (a queue, a channel) are :class:`ObjectFamily`: the
objects' label values are columns of strings (:class:`ObjectLabels`) shared by all the
families of those objects, and the values a list of ints, so a scrape of 10,000 queues makes
no dict, tuple or ``Sample`` per queue (the garbage collector has nothing to chase) and the
text of each queue's label set is made once.  Their ``samples`` are still there for anything
that reads families the usual way (``generate_latest``, tests).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

CONTENT_TYPE: Final = CONTENT_TYPE_PLAIN_0_0_4

Labels = dict[str, str]
NO_LABELS: Final[Labels] = {}


# -- families --------------------------------------------------------------------------------


def family(name: str, kind: str, documentation: str, samples: Iterable[tuple[Labels, float]]) -> Metric:
    """A metric family of ``kind`` (gauge, counter or untyped) from (labels, value) pairs.

    A counter's ``name`` ends in ``_total``, as it is exposed.  The label dicts are kept, not
    copied: one object's dict may serve all its families (see :func:`exposition`).
    """
    if kind == "counter":
        metric = Metric(name.removesuffix("_total"), documentation, "counter")
    else:
        metric = Metric(name, documentation, "unknown" if kind == "untyped" else kind)
    metric.samples = [Sample(name, labels, value) for labels, value in samples]
    return metric


def gauge(name: str, documentation: str, value: float) -> Metric:
    return family(name, "gauge", documentation, [(NO_LABELS, value)])


def counter(name: str, documentation: str, value: float) -> Metric:
    return family(name, "counter", documentation, [(NO_LABELS, value)])


def untyped(name: str, documentation: str, labels: Labels, value: float = 1) -> Metric:
    return family(name, "untyped", documentation, [(labels, value)])


class ObjectLabels:
    """The label sets of many objects (queues), as columns of strings: no dict per object
    unless something asks for :meth:`labels`; the text format of each row is made once
    however many families use it."""

    __slots__ = ("_texts", "columns", "names")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.columns: tuple[list[str], ...] = tuple([] for _ in names)
        self._texts: list[str] | None = None

    def __len__(self) -> int:
        return len(self.columns[0])

    def labels(self, row: int) -> Labels:
        return {name: column[row] for name, column in zip(self.names, self.columns, strict=True)}

    def texts(self) -> list[str]:
        """Each row as the text format writes it: ``{k="v",...}``, names sorted."""
        if self._texts is None:
            order = sorted(range(len(self.names)), key=lambda i: self.names[i])
            template = "{{" + ",".join(f'{self.names[i]}="{{}}"' for i in order) + "}}"
            columns = [_escape_column(self.columns[i]) for i in order]
            self._texts = list(map(template.format, *columns))
        return self._texts


class ObjectFamily(Metric):
    """A family with one sample per object of an :class:`ObjectLabels`, values in a list;
    ``samples`` (for prometheus-client's writers and readers) is made only when read."""

    def __init__(self, name: str, kind: str, documentation: str, objects: ObjectLabels, values: list[int]):
        super().__init__(
            name.removesuffix("_total") if kind == "counter" else name,
            documentation,
            "unknown" if kind == "untyped" else kind,
        )
        self.sample_name = name
        self.objects = objects
        self.values = values

    @property
    def samples(self) -> list[Sample]:
        return [Sample(self.sample_name, self.objects.labels(i), v) for i, v in enumerate(self.values)]

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        if value:
            raise TypeError("an ObjectFamily's samples are its objects' values")


# -- the text format -------------------------------------------------------------------------


def _escape_label(value: str) -> str:
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _escape_column(values: list[str]) -> list[str]:
    return [_escape_label(v) if "\\" in v or "\n" in v or '"' in v else v for v in values]


def _label_text(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items())) + "}"


_TYPES: Final = {"unknown": "untyped"}
_MILLION: Final = 1_000_000  # below it Go writes an integral float as Python does, plus ".0"


def _go_float(value: float) -> str:
    """A value as Go (and generate_latest) writes it: 1e+06, +Inf, NaN."""
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]
    return text


def exposition(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) of ``metrics``: what ``generate_latest`` writes for
    these families (gauges, counters and untyped ones with plain names), faster, since a
    label dict shared by several samples is formatted once."""
    out: list[str] = []
    # id(labels) -> (labels, text): holding the dict keeps its id from being reused meanwhile
    label_texts: dict[int, tuple[Labels, str]] = {}
    for metric in metrics:
        name = metric.name + "_total" if metric.type == "counter" else metric.name
        documentation = metric.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {documentation}\n# TYPE {name} {_TYPES.get(metric.type, metric.type)}\n")
        if isinstance(metric, ObjectFamily):
            texts, values = metric.objects.texts(), metric.values
            if values and min(values) > -_MILLION and max(values) < _MILLION:
                out.extend(map((metric.sample_name + "{} {}.0\n").format, texts, values))
            else:
                out.extend(
                    f"{metric.sample_name}{text} {_go_float(v)}\n"
                    for text, v in zip(texts, values, strict=True)
                )
            continue
        for sample in metric.samples:
            labels = sample.labels
            known = label_texts.get(id(labels))
            if known is None:
                known = label_texts[id(labels)] = (labels, _label_text(labels))
            text = known[1]
            value = sample.value
            shown = f"{value}.0" if type(value) is int and -_MILLION < value < _MILLION else _go_float(value)
            out.append(f"{sample.name}{text} {shown}\n")
    return "".join(out).encode()
