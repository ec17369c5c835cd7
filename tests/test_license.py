"""The project's licence: the full Apache-2.0 text at the root, the one pyproject.toml declares, named in the README."""

import hashlib
import re
import tomllib

from lab.repo import ROOT

LICENSE = ROOT / "LICENSE"
# sha256 of the canonical Apache-2.0 text (apache.org/licenses/LICENSE-2.0.txt, Debian's
# /usr/share/common-licenses/Apache-2.0) with the appendix's copyright line left as a placeholder.
CANONICAL_SHA256 = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30"
COPYRIGHT = re.compile(r"^   Copyright (\d{4}) ml-obs-lab contributors$", re.M)


def test_license_is_the_full_apache_2_text_with_our_copyright():
    text = LICENSE.read_text(encoding="utf-8")
    m = COPYRIGHT.search(text)
    assert m, "no 'Copyright <year> ml-obs-lab contributors' line in the appendix"
    canonical = text.replace(m.group(0), "   Copyright [yyyy] [name of copyright owner]")
    assert hashlib.sha256(canonical.encode()).hexdigest() == CANONICAL_SHA256, "LICENSE differs from the Apache-2.0 text"


def test_pyproject_and_readme_name_the_same_licence():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "Apache-2.0"}
    readme = (ROOT / "README.md").read_text()
    assert "## License" in readme and "[`LICENSE`](LICENSE)" in readme and "Apache License 2.0" in readme
