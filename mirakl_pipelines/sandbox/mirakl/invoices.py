"""A one-page PDF invoice for a sandbox order, so the demo has an invoice source to upload with OR74.

Hand-written PDF 1.4 (one page, Helvetica, a correct xref table): small, valid, no dependency.
"""

from decimal import Decimal


def invoice_pdf(order: dict) -> bytes:
    lines = [
        f"Invoice {order['order_id']}",
        f"Customer: {order['customer']['firstname']} {order['customer']['lastname']}",
        *(
            f"{line['quantity']} x {line['offer_sku']}  {line['price']} {order['currency_iso_code']}"
            for line in order["order_lines"]
        ),
        f"Shipping: {order['shipping_price']} {order['currency_iso_code']}",
        f"Total: {order['total_price']} {order['currency_iso_code']}",
    ]
    text = "BT /F1 11 Tf 50 780 Td 14 TL " + " ".join(f"({_pdf_text(line)}) '" for line in lines) + " ET"
    stream = text.encode("latin-1", "replace")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _pdf_text(value: str | Decimal) -> str:
    return str(value).replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
