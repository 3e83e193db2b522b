"""Order documents of the simulated marketplace: OR74 uploads (multipart) and OR72 listings.

OR74's `order_documents` part comes in three forms (NOTES §3.7): the official PHP SDK's XML
(`<body><order_documents><order_document>…`), the spec's JSON object `{"order_documents": […]}`
and a bare JSON array. All three are accepted; anything else (e.g. a flat JSON object) gets the 400
real instances answer, "problem with form param 'order_documents'". Per-document problems do not
fail the request: Mirakl answers 200 listing only the documents in error, and stores the others.

Error codes other than `valid_order_document.type` (the spec's example) are not documented; the
ones here follow its pattern (inferred).

python-multipart is not a dependency, so the multipart body is split here (RFC 7578 is small).
"""

import json
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

MAX_DOCUMENTS_PER_ORDER = 50
ALLOWED_EXTENSIONS = frozenset(
    {"csv", "doc", "xls", "xlsx", "ppt", "pdf", "odt", "ods", "odp", "txt", "rtf", "png", "jpg", "gif", "zpl", "mov", "mp4"}
)
# A DO01-like list of order document types (DO01's example plus a credit note); the spec's OR74 example
# shows SYSTEM_RETURN_LABEL refused as unknown, so it is deliberately absent.
DEFAULT_DOCUMENT_TYPES = (
    {"code": "SYSTEM_DELIVERY_BILL", "label": "Delivery slip", "entity": "ORDER"},
    {"code": "SYSTEM_SHIPMENT_DELIVERY_BILL", "label": "Shipment delivery slip", "entity": "ORDER"},
    {"code": "SYSTEM_MESSAGE_ATTACHMENT", "label": "Message attachment", "entity": "ORDER"},
    {"code": "CUSTOMER_INVOICE", "label": "Invoice", "entity": "ORDER"},
    {"code": "CUSTOMER_CREDIT_NOTE", "label": "Credit note", "entity": "ORDER"},
)
OPERATOR_ONLY_TYPES = frozenset({"SYSTEM_DELIVERY_BILL", "SYSTEM_SHIPMENT_DELIVERY_BILL"})
NOT_ON_ORDERS_TYPES = frozenset({"SYSTEM_MESSAGE_ATTACHMENT"})
BAD_METADATA = "Bad Request: problem with form param 'order_documents'"


class DocumentRequestError(ValueError):
    """The request as a whole is unusable (answered 400 with the classic body)."""


@dataclass(frozen=True)
class FormPart:
    name: str
    filename: Optional[str]
    content_type: Optional[str]
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[FormPart]:
    """The parts of a multipart/form-data body, in order."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise DocumentRequestError(f"Content-Type must be multipart/form-data (got {content_type or 'none'})")
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise DocumentRequestError("multipart/form-data without a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    chunks = body.split(delimiter)
    if len(chunks) < 3 or not chunks[-1].startswith(b"--"):
        raise DocumentRequestError("malformed multipart body: no closing boundary")
    parts = []
    for chunk in chunks[1:-1]:
        if not chunk.startswith(b"\r\n") or not chunk.endswith(b"\r\n"):
            raise DocumentRequestError("malformed multipart body: a part is not framed by CRLF")
        head, separator, data = chunk[2:-2].partition(b"\r\n\r\n")
        if not separator:
            raise DocumentRequestError("malformed multipart body: a part has no header/body separator")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        disposition = headers.get("content-disposition", "")
        name = _param(disposition, "name")
        if not disposition.lower().startswith("form-data") or name is None:
            raise DocumentRequestError("malformed multipart body: a part has no Content-Disposition: form-data; name=…")
        parts.append(FormPart(name, _param(disposition, "filename"), headers.get("content-type"), data))
    return parts


def _param(header: str, name: str) -> Optional[str]:
    match = re.search(rf'(?:^|;)\s*{name}="((?:[^"\\]|\\.)*)"', header) or re.search(rf"(?:^|;)\s*{name}=([^;\s]+)", header)
    return match.group(1).replace('\\"', '"') if match else None


def parse_order_documents(text: str) -> list[dict]:
    """The metadata entries `[{file_name, type_code, …}]` from any accepted form of the part."""
    stripped = text.strip()
    if stripped.startswith("<"):
        try:
            root = ElementTree.fromstring(stripped)
        except ElementTree.ParseError:
            raise DocumentRequestError(BAD_METADATA) from None
        container = root if root.tag == "order_documents" else root.find("order_documents")
        if container is None:
            raise DocumentRequestError(BAD_METADATA)
        return [{child.tag: (child.text or "").strip() for child in item} for item in container.findall("order_document")]
    try:
        data = json.loads(stripped)
    except ValueError:
        raise DocumentRequestError(BAD_METADATA) from None
    if isinstance(data, dict) and isinstance(data.get("order_documents"), list):
        data = data["order_documents"]
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise DocumentRequestError(BAD_METADATA)
    return data


def check_documents(
    entries: list[dict], files: dict[str, bytes], existing: list[dict], document_types: set[str]
) -> tuple[list[dict], list[dict]]:
    """Split an upload into (accepted entries, OR74 error items), applying Mirakl's documented rules."""
    accepted: list[dict] = []
    failed: list[dict] = []
    names_on_order = {doc["file_name"] for doc in existing}
    seen: set[str] = set()
    for entry in entries:
        file_name = entry.get("file_name")
        type_code = entry.get("type_code")
        errors = []
        if not isinstance(file_name, str) or not file_name:
            errors.append(_error("valid_order_document.file_name", "file_name", "The file name is required"))
        else:
            extension = file_name.rsplit(".", 1)[-1].lower() if "." in file_name else ""
            if not file_name.isascii():
                errors.append(_error("valid_order_document.file_name.charset", "file_name",
                                     "The file name must contain only US-ASCII characters"))
            if extension not in ALLOWED_EXTENSIONS:
                errors.append(_error("valid_order_document.file_name.extension", "file_name",
                                     f"Unsupported file type '{extension}'; supported: {', '.join(sorted(ALLOWED_EXTENSIONS))}"))
            if file_name in seen or file_name in names_on_order:
                errors.append(_error("valid_order_document.file_name.duplicate", "file_name",
                                     f"A document named {file_name} already exists on this order; file names must be distinct"))
            if file_name not in files:
                errors.append(_error("valid_order_document.file", "file_name",
                                     f"No file named {file_name} was sent in the 'files' part"))
            elif not files[file_name]:
                errors.append(_error("valid_order_document.file.empty", "file_name", f"The file {file_name} is empty"))
            seen.add(file_name)
        if not isinstance(type_code, str) or type_code not in document_types:
            errors.append(_error("valid_order_document.type", "type_code", "Unable to retrieve document's type from the given code"))
        elif type_code in OPERATOR_ONLY_TYPES:
            errors.append(_error("valid_order_document.type.restricted", "type_code",
                                 f"The document type {type_code} is restricted to the operator role"))
        elif type_code in NOT_ON_ORDERS_TYPES:
            errors.append(_error("valid_order_document.type.not_allowed", "type_code",
                                 f"The document type {type_code} cannot be directly uploaded to an order"))
        if not errors and len(existing) + len(accepted) >= MAX_DOCUMENTS_PER_ORDER:
            errors.append(_error("valid_order_document.limit", "order_documents",
                                 f"An order can have a maximum of {MAX_DOCUMENTS_PER_ORDER} documents"))
        if errors:
            failed.append({"errors": errors, "input": _input(entry)})
        else:
            accepted.append({"file_name": file_name, "type_code": type_code})
    described = {entry.get("file_name") for entry in entries}
    for file_name in files:
        if file_name not in described:
            failed.append({
                "errors": [_error("valid_order_document.missing", "order_documents",
                                  f"The file {file_name} has no entry in 'order_documents'")],
                "input": {"file_name": file_name},
            })
    return accepted, failed


def stored_document(doc_id: int, order_id: str, entry: dict, content: bytes, uploaded: datetime) -> dict:
    """An OR72 item plus the bytes (kept apart from the API view)."""
    return {
        "id": doc_id, "order_id": order_id, "type": entry["type_code"], "file_name": entry["file_name"],
        "file_size": len(content), "date_uploaded": uploaded, "_content": content,
    }


def public_document(doc: dict) -> dict:
    return {key: value for key, value in doc.items() if not key.startswith("_")}


def _error(code: str, field: str, message: str) -> dict:
    return {"code": code, "field": field, "message": message}


def _input(entry: dict) -> dict[str, Any]:
    # The spec's input object: file_name and type_code as received (strings only).
    return {key: entry[key] for key in ("file_name", "type_code") if isinstance(entry.get(key), str)}
