"""CSV files the portal writes are opened in spreadsheets: no cell may run as a formula.

A cell starting with `= + - @`, a tab or a carriage return is a formula (or becomes one) in
Excel, LibreOffice and Google Sheets; a leading apostrophe makes it text (the OWASP advice).
Every CSV export goes through `neutralise` (the audit trail, the recipients of a bulletin).
"""

import csv

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value):
    """`value` as text a spreadsheet shows and never evaluates."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class _Echo:
    def write(self, value):
        return value


def csv_lines(rows):
    """Each row (an iterable of values) as one line of CSV, every cell neutralised: for a
    StreamingHttpResponse."""
    writer = csv.writer(_Echo())
    for row in rows:
        yield writer.writerow([neutralise(value) for value in row])
