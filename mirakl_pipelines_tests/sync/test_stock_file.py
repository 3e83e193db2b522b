"""The STO01 stock file against the spec's description, and the STO03 error report read without losing a line."""

import csv
import io
import json
import re
import time

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mirakl_pipelines.sync.stock_file import (
    HEADER,
    NO_REASON,
    StockFileError,
    StockLineError,
    parse_error_report,
    parse_stock_import_csv,
    stock_import_csv,
)
from mirakl_pipelines_tests.reference import reference_file


def lines(pairs) -> pd.DataFrame:
    pairs = list(pairs)
    return pd.DataFrame({"offer_sku": pd.array([s for s, _ in pairs], dtype="string"),
                         "quantity": pd.array([q for _, q in pairs], dtype="Int64")})


def operation(operation_id: str) -> dict:
    spec = json.loads(reference_file("mirakl/mirakl-mmp-seller-openapi.json").read_text())
    return next(op for path in spec["paths"].values() for op in path.values()
                if isinstance(op, dict) and op.get("operationId") == operation_id)


# ---- STO01 -----------------------------------------------------------------------------------------------------


def test_the_file_follows_the_spec_description_of_sto01():
    part = operation("STO01")["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["file"]
    description = part["description"]
    spec_header = re.search(r"<code>(\"offer-sku\".*?)</code>", description).group(1)
    assert spec_header == '"offer-sku";"quantity";"warehouse-code";"update-delete"'
    assert "If warehouse-code is not provided, the quantity provided for the offer-sku will be considered as a global one" \
        in description

    data = stock_import_csv(lines([("ALP-TRAIL-42", 12), ("CHAUSSURE-É", 0)]))
    text = data.decode("utf-8")  # UTF-8, no BOM
    assert not data.startswith(b"\xef\xbb\xbf")
    assert text.splitlines() == [
        spec_header,
        '"ALP-TRAIL-42";"12";"";"update"',  # global quantity: no warehouse code
        '"CHAUSSURE-É";"0";"";"update"',
    ]


def test_skus_holding_the_delimiter_or_quotes_survive():
    pairs = [('A;B', 1), ('say "hi"', 2), (" spaced ", 3), ("'", 4)]
    data = stock_import_csv(lines(pairs))
    assert '"A;B";"1"' in data.decode() and '"say ""hi""";"2"' in data.decode()
    assert parse_stock_import_csv(data) == pairs


@pytest.mark.parametrize(
    "pairs, message",
    [
        ([("A", 1), ("A", 2)], "'A': listed twice"),
        ([("A", -1)], "'A': negative quantity"),
        ([("", 1)], "'': empty offer SKU"),
        ([("A\nB", 1)], "line break"),
        ([(None, 1)], "lack an offer SKU or a quantity"),
        ([("A", None)], "lack an offer SKU or a quantity"),
    ],
)
def test_a_line_that_cannot_be_sent_is_refused_naming_it(pairs, message):
    with pytest.raises(StockFileError, match=re.escape(message)):
        stock_import_csv(lines(pairs))


def test_an_empty_file_is_the_header_alone():
    assert parse_stock_import_csv(stock_import_csv(lines([]))) == []


@pytest.mark.parametrize(
    "data, message",
    [
        (b'"sku";"quantity"\n', "line 1: expected the header"),
        (b'"offer-sku";"quantity";"warehouse-code";"update-delete"\n"A";"x";"";"update"\n', "line 2"),
        (b'"offer-sku";"quantity";"warehouse-code";"update-delete"\n"A";"1";"W1";"update"\n', "line 2"),
    ],
)
def test_reading_back_a_file_we_would_not_write_fails_naming_the_line(data, message):
    with pytest.raises(StockFileError, match=message):
        parse_stock_import_csv(data)


def test_a_hundred_thousand_lines_take_well_under_a_second():
    many = lines((f"SKU-{i:06d}", i % 97) for i in range(100_000))
    started = time.perf_counter()
    data = stock_import_csv(many)
    elapsed = time.perf_counter() - started
    assert data.count(b"\n") == 100_001
    assert elapsed < 1.0, f"{elapsed:.2f} s for 100,000 lines"


SKUS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), min_size=1, max_size=20)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(SKUS, st.integers(0, 10**9), max_size=20))
def test_any_sku_and_quantity_round_trip(stock):
    assert parse_stock_import_csv(stock_import_csv(lines(stock.items()))) == list(stock.items())


# ---- STO03 -----------------------------------------------------------------------------------------------------

SENT = ["A", "B;1", "C"]


def test_the_spec_describes_the_report_as_line_number_then_reason():
    description = operation("STO03")["description"]
    assert "The first column contains the line number in error. The second column contains the error reason." in description


def test_line_n_is_the_offer_sent_on_line_n_of_the_file():
    report = b'2;"The offer does not exist"\n4;"Quantity must be a positive integer"\n'
    assert parse_error_report(report, SENT) == [
        StockLineError(2, "A", "The offer does not exist"),
        StockLineError(4, "C", "Quantity must be a positive integer"),
    ]


def test_a_header_a_bom_commas_crlf_and_multiline_reasons_are_read():
    report = '\ufeff"error-line","error-message"\r\n"3","Offer not found,\r\nsee the catalogue"\r\n\r\n2,\r\n'.encode()
    assert parse_error_report(report, SENT) == [
        StockLineError(3, "B;1", "Offer not found,\r\nsee the catalogue"),
        StockLineError(2, "A", NO_REASON),
    ]


def test_a_report_naming_its_columns_is_read_by_name():
    report = (b'"offer-sku";"quantity";"warehouse-code";"update-delete";"error-line";"error-message"\n'
              b'"X";"1";"";"update";"3";"Unknown offer"\n')
    assert parse_error_report(report, SENT) == [StockLineError(3, "X", "Unknown offer")]
    # The spec's order (line number, reason) followed by the line's own columns, ready to be fixed and re-imported.
    report = (b'"error-line";"error-message";"offer-sku";"quantity";"warehouse-code";"update-delete"\n'
              b'"2";"Offer not found";"A";"1";"";"update"\n"4";"Wrong column count";"";"";"";""\n')
    assert parse_error_report(report, SENT) == [StockLineError(2, "A", "Offer not found"),
                                                StockLineError(4, "C", "Wrong column count")]


def test_an_unreadable_record_is_an_entry_and_the_others_are_kept():
    report = b'2;ok\nnot a number;"broken"\n\n4;"last"\n1;"the header?"\n9;"beyond"\n'
    errors = parse_error_report(report, SENT)
    assert [(e.line_number, e.offer_sku) for e in errors] == [(2, "A"), (None, None), (4, "C"), (1, None), (9, None)]
    assert "error report record at line 2 has no readable line number" in errors[1].reason
    assert "line 1 is not an offer line of the file sent, which had 3" in errors[3].reason
    assert parse_error_report(b"", SENT) == []
    assert parse_error_report(b"\xff\xfe\x00garbage", SENT)[0].line_number is None


# No bare "\r": the csv module leaves it unquoted under a "\n" terminator, where any reader sees a line break.
REASONS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"), max_size=30)
RECORDS = st.lists(st.one_of(
    st.tuples(st.just("line"), st.integers(1, 12), REASONS),
    st.tuples(st.just("garbage"), st.from_regex(r"[a-z][a-z ]{0,10}", fullmatch=True), st.just("")),
), max_size=12)


@settings(max_examples=100, deadline=None)
@given(records=RECORDS, delimiter=st.sampled_from([";", ","]), header=st.booleans(), bom=st.booleans(),
       quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]), terminator=st.sampled_from(["\n", "\r\n"]))
def test_error_report_parsing_never_loses_a_line(records, delimiter, header, bom, quoting, terminator):
    sent = [f"SKU-{i}" for i in range(8)]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator=terminator)
    if header:
        writer.writerow(["error-line", "error-message"])
    expected = []
    for kind, value, reason in records:
        if kind == "line":
            writer.writerow([value, reason])
            sku = sent[value - 2] if 2 <= value <= 9 else None
            expected.append((value, sku, reason.strip() or NO_REASON))
        else:
            out.write(value + terminator)  # one word, no delimiter: never mistaken for a header or a line
            expected.append((None, None, None))
    data = (("\ufeff" if bom else "") + out.getvalue()).encode()
    got = parse_error_report(data, sent)
    assert len(got) == len(expected)  # one entry per record, readable or not
    for error, (number, sku, reason) in zip(got, expected):
        assert (error.line_number, error.offer_sku) == (number, sku)
        if reason is not None:
            assert error.reason.startswith(reason)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_give_entries_not_an_exception(data):
    for error in parse_error_report(data, SENT):
        assert isinstance(error.reason, str) and error.reason
