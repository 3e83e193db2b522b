"""A small, valid one-page PDF invoice for a sandbox order (served for OR74 invoice-upload demos).

Written by hand (PDF 1.4, Helvetica in WinAnsiEncoding, exact xref offsets) so no PDF library is
needed; characters outside Windows-1252 print as "?".
"""

from decimal import Decimal

PAGE_WIDTH, PAGE_HEIGHT = 595, 842  # A4 in points


def _pdf_text(text: str) -> bytes:
    """A PDF literal string body: Windows-1252 bytes with (, ) and \\ escaped and non-ASCII as octal escapes."""
    out = bytearray()
    for byte in str(text).encode("cp1252", errors="replace"):
        if byte in b"()\\":
            out += b"\\" + bytes([byte])
        elif 32 <= byte < 127:
            out.append(byte)
        else:
            out += f"\\{byte:03o}".encode()
    return bytes(out)


def invoice_lines(order: dict, shop_name: str) -> list[str]:
    currency = order["currencyCode"]
    lines = [f"{shop_name} - Invoice {order['name']}", f"Date: {order['processedAt'][:10]}"]
    address = order.get("shippingAddress") or {}
    if address.get("name"):
        lines.append(f"Customer: {address['name']}, {address.get('zip') or ''} {address.get('city') or ''}".rstrip())
    if order.get("sourceIdentifier"):
        lines.append(f"Marketplace order: {order['sourceIdentifier']}")
    lines.append("")
    for line in order["lineItems"]:
        unit = Decimal(line["originalUnitPriceSet"]["shopMoney"]["amount"])
        lines.append(f"{line['quantity']} x {line.get('sku') or ''} {line['name']}  @ {unit:.2f} {currency}"
                     f"  = {unit * line['quantity']:.2f} {currency}")
    shipping = Decimal(order["totalShippingPriceSet"]["shopMoney"]["amount"])
    tax = Decimal(order["totalTaxSet"]["shopMoney"]["amount"])
    total = Decimal(order["totalPriceSet"]["shopMoney"]["amount"])
    lines += ["", f"Shipping: {shipping:.2f} {currency}",
              f"Tax{' (included)' if order.get('taxesIncluded') else ''}: {tax:.2f} {currency}",
              f"Total: {total:.2f} {currency}"]
    return lines


def invoice_pdf(order: dict, shop_name: str) -> bytes:
    text = [b"BT", b"/F1 16 Tf", b"50 790 Td", b"18 TL"]
    for n, line in enumerate(invoice_lines(order, shop_name)):
        if n == 1:
            text.append(b"/F1 11 Tf 14 TL")
        text.append(b"(" + _pdf_text(line) + b") Tj T*")
    text.append(b"ET")
    content = b"\n".join(text)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
        % (PAGE_WIDTH, PAGE_HEIGHT),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
        b"<< /Title (" + _pdf_text(f"Invoice {order['name']}") + b") /Producer (mirakl_pipelines sandbox) >>",
    ]
    pdf = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(pdf))
        pdf += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(pdf)
    pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    pdf += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    pdf += b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, len(objects), xref)
    return bytes(pdf)
