"""RDML 1.0–1.4 files (Real-time PCR Data Markup Language), plain XML or zipped.

An ``.rdml`` file is either the XML itself or a zip holding it: RDML-Tools and
most instruments write ``rdml_data.xml``; Bio-Rad CFX writes one XML with
another name; the Roche LightCycler 96 writes several XMLs (app, instrument,
calculated data) next to ``rdml_data.xml``. The RDML document is the member
named ``rdml_data.xml``, else the only ``.xml`` member, else the ``.xml``
member whose root element is ``rdml``.

Mapping to the Wells table (one row per reaction × data element, i.e. per
well and target; a reaction without data is still one row with empty assay):

* ``run`` = ``experimentId/runId``; ``line`` = 0 (XML has no useful lines).
* ``well`` = the react id. When the run's ``pcrFormat`` has letter rows and
  number columns (``rowLabel`` ABC, ``columnLabel`` 123), the numeric react id
  (1 = A1, counting along rows) becomes ``A1``-style using the run's column
  count; otherwise (RDML 1.0 ids like ``A1``, rotor positions) the id is kept.
  In a file with several runs the well is ``run:well``; in a multiplex file
  (a reaction with several targets, e.g. LightCycler 96) ``-target`` is added
  (``D3-FAM@bACT``), so that the well id is unique in the file (the same
  conventions as the other readers).
* ``sample`` = the react's sample id. LightCycler 96 uses UUIDs as sample ids
  and puts the name the user typed in the sample ``description``; when the id
  is a UUID and the description is not empty, the description is used.
* ``assay`` = the data's target id (``tar``); ``cq`` = ``cq`` (-1 or missing =
  no Cq); ``cq_raw`` = the ``cq`` text.
* ``sample_type`` = the sample's ``type`` code in the words the other readers
  use (unkn → Unknown, std → Standard, ntc → NTC, nac → NAC, nrt → NRT,
  ntp → NTP (no target present), pos → Positive Control, opt → Optical
  Calibrator; other codes as written); ``quantity`` = the sample's
  ``quantity/value`` (known input of standards).

Safety: the XML is parsed with :mod:`defusedxml` refusing DTDs, entity
declarations and external references (XXE, "billion laughs"); zips are checked
for member count, path-traversal names and uncompressed size (from the zip
directory and again while reading, in chunks) before anything is parsed.
"""

from __future__ import annotations

import io
import math
import re
import zipfile
from pathlib import Path, PurePosixPath
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as safe_xml
import pandas as pd
from defusedxml import DefusedXmlException

from ..errors import InputError
from .toolkit import (
    parse_cq_column,
    wells_frame,
)
from .vocabulary import (
    check_unique_wells,
)

#: Largest RDML XML we read (uncompressed), in bytes.
MAX_XML_BYTES = 256 * 1024 * 1024
#: Most members a zipped RDML may hold.
MAX_ZIP_MEMBERS = 100
_CHUNK = 1024 * 1024

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: RDML sample type codes in the lab's words.
SAMPLE_TYPE_NAMES = {
    "unkn": "Unknown",
    "std": "Standard",
    "ntc": "NTC",
    "nac": "NAC",
    "nrt": "NRT",
    "ntp": "NTP",
    "pos": "Positive Control",
    "opt": "Optical Calibrator",
}
_HINT_REEXPORT = "re-export the RDML file from the instrument or RDML-Tools"


# --------------------------------------------------------------------------- reading bytes


def _looks_like_rdml(head: bytes) -> bool:
    return b"<rdml" in head or b":rdml" in head


def sniff_path(path: str | Path) -> bool:
    """True if ``path`` is an RDML file: a zip with an RDML XML, or XML with an ``rdml`` root."""
    p = Path(path)
    if not p.is_file():
        return False
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as archive:
                names = archive.namelist()
            if any(PurePosixPath(n).name.lower() == "rdml_data.xml" for n in names):
                return True
            return p.suffix.lower() == ".rdml" and any(n.lower().endswith(".xml") for n in names)
        with p.open("rb") as handle:
            head = handle.read(8192)
    except (OSError, zipfile.BadZipFile):
        return False
    for encoding in ("utf-8", "utf-16"):
        try:
            text = head.decode(encoding, errors="ignore").encode("utf-8")
        except UnicodeError:
            continue
        if _looks_like_rdml(text):
            return True
    return False


def _unsafe_name(name: str) -> bool:
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return True
    parts = re.split(r"[\\/]", name)
    return ".." in parts


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: str, limit: int) -> bytes:
    if info.file_size > limit:
        raise InputError(
            path,
            f"zip member {info.filename!r} would unpack to {info.file_size} bytes, "
            f"more than the {limit}-byte limit",
            "this is not a normal RDML file (possible zip bomb); re-export it",
        )
    out = io.BytesIO()
    total = 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:
                raise InputError(
                    path,
                    f"zip member {info.filename!r} unpacks to more than the {limit}-byte limit "
                    "(its size in the zip directory is wrong)",
                    "this is not a normal RDML file (possible zip bomb); re-export it",
                )
            out.write(chunk)
    return out.getvalue()


def _xml_from_zip(path: str, max_bytes: int, max_members: int) -> tuple[bytes, str]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise InputError(path, f"the RDML zip cannot be opened ({error})", _HINT_REEXPORT) from None
    with archive:
        infos = archive.infolist()
        if len(infos) > max_members:
            raise InputError(
                path,
                f"the RDML zip holds {len(infos)} members, more than {max_members}",
                "this is not a normal RDML file; re-export it",
            )
        for info in infos:
            if _unsafe_name(info.filename):
                raise InputError(
                    path,
                    f"the RDML zip has a member with an unsafe path {info.filename!r} "
                    "(absolute or with '..')",
                    "this is not a normal RDML file; re-export it",
                )
        xml_members = [i for i in infos if not i.is_dir() and i.filename.lower().endswith(".xml")]
        chosen = [i for i in xml_members if PurePosixPath(i.filename).name.lower() == "rdml_data.xml"]
        if not chosen and len(xml_members) == 1:
            chosen = xml_members
        if not chosen:
            for info in xml_members:
                with archive.open(info) as member:
                    if _looks_like_rdml(member.read(4096)):
                        chosen = [info]
                        break
        if not chosen:
            raise InputError(
                path,
                "the zip holds no RDML XML (no rdml_data.xml, no XML with an <rdml> root)",
                _HINT_REEXPORT,
            )
        info = chosen[0]
        try:
            return _read_member(archive, info, path, max_bytes), info.filename
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise InputError(
                path, f"zip member {info.filename!r} cannot be read ({error})", _HINT_REEXPORT
            ) from None


def _load_xml_bytes(path: str, max_bytes: int, max_members: int) -> tuple[bytes, str]:
    p = Path(path)
    if not p.is_file():
        raise InputError(
            path,
            "file not found",
            "check the path column of plates.tsv (paths are relative to the working directory)",
        )
    if zipfile.is_zipfile(p):
        return _xml_from_zip(path, max_bytes, max_members)
    size = p.stat().st_size
    if size > max_bytes:
        raise InputError(
            path,
            f"the file is {size} bytes, larger than the {max_bytes}-byte limit",
            "split the export or raise the limit",
        )
    return p.read_bytes(), ""


def _parse(data: bytes, path: str, member: str) -> Element:
    inside = f" (zip member {member!r})" if member else ""
    try:
        return safe_xml.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise InputError(
            path,
            f"the RDML file{inside} declares a DTD/entities, which is refused for safety "
            "(such declarations can read local files or exhaust memory)",
            "RDML never needs a DTD; re-export the file from the instrument or RDML-Tools",
        ) from None
    except ParseError as error:
        line = error.position[0] if getattr(error, "position", None) else None
        raise InputError(
            path,
            f"the RDML XML{inside} is malformed ({error.msg if hasattr(error, 'msg') else error})",
            _HINT_REEXPORT,
            line=line,
        ) from None


# --------------------------------------------------------------------------- XML helpers (namespace-agnostic)


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _children(element: Element, name: str) -> list[Element]:
    return [child for child in element if _local(child.tag) == name]


def _child(element: Element, name: str) -> Element | None:
    for child in element:
        if _local(child.tag) == name:
            return child
    return None


def _child_text(element: Element, name: str) -> str | None:
    child = _child(element, name)
    return None if child is None else (child.text or "")


def _row_label(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA (1536-well plates have 32 rows)."""
    label = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        label = chr(ord("A") + rest) + label
    return label


def _well_namer(run: Element):
    fmt = _child(run, "pcrFormat")
    if fmt is None:
        return lambda react_id: react_id
    try:
        rows = int((_child_text(fmt, "rows") or "").strip())
        columns = int((_child_text(fmt, "columns") or "").strip())
    except ValueError:
        return lambda react_id: react_id
    row_label = (_child_text(fmt, "rowLabel") or "").strip()
    column_label = (_child_text(fmt, "columnLabel") or "").strip()
    if row_label != "ABC" or column_label != "123" or rows < 1 or columns < 1:
        return lambda react_id: react_id

    def name(react_id: str) -> str:
        if not react_id.isdigit():
            return react_id
        number = int(react_id)
        if not 1 <= number <= rows * columns:
            return react_id
        row, column = divmod(number - 1, columns)
        return f"{_row_label(row)}{column + 1}"

    return name


def _sample_table(root: Element) -> dict[str, tuple[str, str, float]]:
    """sample id → (name to report, type code, known quantity)."""
    samples = {}
    for sample in _children(root, "sample"):
        sample_id = (sample.get("id") or "").strip()
        types = _children(sample, "type")
        plain = [t for t in types if not t.get("targetId")]
        chosen = (plain or types)[:1]
        type_code = (chosen[0].text or "").strip() if chosen else ""
        type_code = SAMPLE_TYPE_NAMES.get(type_code.lower(), type_code)
        quantity = math.nan
        q = _child(sample, "quantity")
        if q is not None:
            try:
                quantity = float((_child_text(q, "value") or "").strip())
            except ValueError:
                quantity = math.nan
        name = sample_id
        description = (_child_text(sample, "description") or "").strip()
        if _UUID.match(sample_id) and description:
            name = description
        samples[sample_id] = (name, type_code, quantity)
    return samples


# --------------------------------------------------------------------------- reader


def read(path: str, max_bytes: int = MAX_XML_BYTES, max_members: int = MAX_ZIP_MEMBERS) -> pd.DataFrame:
    """Read an RDML file (plain XML or zip) into Wells rows.

    ``max_bytes`` limits the uncompressed size of the RDML XML (zip member or
    plain file); ``max_members`` the number of members of a zipped RDML.
    """
    path = str(path)
    data, member = _load_xml_bytes(path, max_bytes, max_members)
    root = _parse(data, path, member)
    if _local(root.tag) != "rdml":
        raise InputError(
            path,
            f"the XML root element is <{_local(root.tag)}>, not <rdml>",
            "give an RDML file for format rdml",
        )
    samples = _sample_table(root)

    records: list[tuple[str, str, str, str, str]] = []  # run, well, react sample id, target, cq text
    multiplex = False
    for experiment in _children(root, "experiment"):
        experiment_id = (experiment.get("id") or "").strip()
        for run in _children(experiment, "run"):
            run_name = f"{experiment_id}/{(run.get('id') or '').strip()}"
            well_name = _well_namer(run)
            for react in _children(run, "react"):
                well = well_name((react.get("id") or "").strip())
                sample_element = _child(react, "sample")
                sample_id = "" if sample_element is None else (sample_element.get("id") or "").strip()
                data_elements = _children(react, "data")
                if len(data_elements) > 1:
                    multiplex = True
                if not data_elements:
                    records.append((run_name, well, sample_id, "", ""))
                for data_element in data_elements:
                    target = _child(data_element, "tar")
                    target_id = "" if target is None else (target.get("id") or "").strip()
                    cq_text = _child_text(data_element, "cq")
                    records.append((run_name, well, sample_id, target_id, "" if cq_text is None else cq_text))
    if not records:
        raise InputError(
            path,
            "the RDML file holds no reactions (no experiment/run/react)",
            "export an RDML file with Cq data",
        )

    table = pd.DataFrame(records, columns=["run", "well", "sample_id", "assay", "cq_raw"])
    if table["run"].nunique() > 1:
        table["well"] = table["run"] + ":" + table["well"]
    if multiplex:
        table["well"] = table["well"] + "-" + table["assay"]
    cq = parse_cq_column(
        table["cq_raw"], path + (f" ({member})" if member else ""), None, "cq", extra_no_value=(-1.0,)
    )
    info = table["sample_id"].map(lambda s: samples.get(s, (s, "", math.nan)))
    frame = wells_frame(
        len(table),
        run=table["run"],
        well=table["well"],
        sample=info.map(lambda t: t[0]),
        assay=table["assay"],
        cq=cq,
        cq_raw=table["cq_raw"],
        sample_type=info.map(lambda t: t[1]),
        quantity=info.map(lambda t: t[2]),
        line=0,
    )
    check_unique_wells(frame, path, column="react id")
    frame.attrs["cq_column"] = "cq"
    return frame
