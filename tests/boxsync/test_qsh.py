"""The qsh algorithm against the published vectors (connect-protocol.md §3.5)."""
from urllib.parse import parse_qsl, urlsplit

import pytest

from boxsync.connect.qsh import canonical_request, query_hash, relative_path


def _split(url: str, base_path: str = ""):
    parts = urlsplit(url)
    return relative_path(parts.path, base_path), parse_qsl(parts.query, keep_blank_values=True)


VECTORS = [
    ("GET", "/path", "", "GET&/path&", "799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2"),
    ("GET", "", "", "GET&/&", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"),
    ("GET", "/", "", "GET&/&", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"),
    (
        "GET",
        "/hello-world?lic=none&tz=Australia%2FSydney&cp=%2Fjira&user_key=&loc=en-US&user_id=&jwt=abc.def.ghi"
        "&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_c=channel-servlet-hello-world&xdm_p=1",
        "",
        "GET&/hello-world&cp=%2Fjira&lic=none&loc=en-US&tz=Australia%2FSydney&user_id=&user_key="
        "&xdm_c=channel-servlet-hello-world&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_p=1",
        "8063ff4ca1e41df7bc90c8ab6d0f6207d491cf6dad7c66ea797b4614b71922e9",
    ),
    ("POST", "/hello-world", "", "POST&/hello-world&",
     "6f95f3738e1b037a3bebbe0ad237d80fdbc1d5ae452e98ce03a9c004c178ebb4"),
    (
        "GET",
        "/path/to/service?zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202"
        "&repeated=Parameter%202",
        "",
        "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param",
        "9ae6056cf66c00e76fa15e66fd26091fecd7356eec2f2c30629835b656799f66",
    ),
    (
        "GET",
        "/base/path/to/service?zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202"
        "&repeated=Parameter%202",
        "/base",
        "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param",
        "9ae6056cf66c00e76fa15e66fd26091fecd7356eec2f2c30629835b656799f66",
    ),
    ("GET", "/hello-world?a&b=foo&c", "", "GET&/hello-world&a=&b=foo&c=",
     "05a07346264b590803b827ab297a7fcb7e250fe5fa8c66187a9131b0934496b2"),
    ("POST", "/installed", "", "POST&/installed&",
     "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4"),
    ("POST", "/uninstalled", "", "POST&/uninstalled&",
     "8a8d06f040b246544d605b08aeb419e30b5cf0e200f512888486585ecce6a52e"),
    ("POST", "/webhooks/issue-created", "", "POST&/webhooks/issue-created&",
     "8b7666d39455afda7acc6ac32b76641eb73098ff5db40ad0c713e6d1c842a886"),
    ("GET", "/rest/api/3/issue/ABC-1?expand=changelog,renderedFields", "",
     "GET&/rest/api/3/issue/ABC-1&expand=changelog%2CrenderedFields",
     "21d48f87ede77f9456f63201c559d9966444828a6e8fa6d0d3aa01f5c6256429"),
    (
        "GET",
        "/rest/api/3/search?jql=project%20%3D%20ABC%20AND%20status%20%3D%20%22In%20Progress%22&maxResults=50",
        "",
        "GET&/rest/api/3/search&jql=project%20%3D%20ABC%20AND%20status%20%3D%20%22In%20Progress%22&maxResults=50",
        "2dce18e57551434aa195525b0596ef9deffc446560b00932c0c323ffc4183e25",
    ),
    ("GET", "/rest/api/3/search?jql=project+%3D+ABC&fields=summary&fields=status", "",
     "GET&/rest/api/3/search&fields=status,summary&jql=project%20%3D%20ABC",
     "d3d662ec486b12cead0aaae9350d396e460841459feedd87397fb665c07730f3"),
    (
        "GET",
        "/panel?issueKey=ABC-1&projectKey=ABC&lic=none&cp=&xdm_e=https%3A%2F%2Fexample.atlassian.net"
        "&xdm_c=channel-x&cv=1001.0.0-SNAPSHOT&jwt=xyz",
        "",
        "GET&/panel&cp=&cv=1001.0.0-SNAPSHOT&issueKey=ABC-1&lic=none&projectKey=ABC&xdm_c=channel-x"
        "&xdm_e=https%3A%2F%2Fexample.atlassian.net",
        "4a353d6630c81e901a3627bd7b1f5dcf989ceb8be49e579c50168e2358654d5e",
    ),
    ("GET", "/jira-app/panel?issueKey=ABC-1", "/jira-app", "GET&/panel&issueKey=ABC-1",
     "9e8a0822ed19a8ed0c2ba0c001a2a721b7a3a2af8985cab2ed6d79648b101971"),
]


@pytest.mark.parametrize("method,url,base_path,canonical,qsh", VECTORS)
def test_published_vectors(method, url, base_path, canonical, qsh):
    path, query = _split(url, base_path)
    assert canonical_request(method, path, query) == canonical
    assert query_hash(method, path, query) == qsh


def test_ampersand_in_path_is_escaped():
    assert canonical_request("POST", "/rest/api/2/project&a=b", [("x", "y")]) == \
        "POST&/rest/api/2/project%26a=b&x=y"
    path, query = _split("/jira/rest/api/2/project/jira&a=b&c=d?x=y", "/jira")
    assert canonical_request("POST", path, query) == "POST&/rest/api/2/project/jira%26a=b%26c=d&x=y"


def test_repeated_params_differ_from_comma_value():
    assert query_hash("GET", "/x", [("f", "a"), ("f", "b")]) != query_hash("GET", "/x", [("f", "a,b")])


def test_method_is_upper_cased_and_trailing_slash_dropped():
    assert canonical_request("get", "/path/", []) == "GET&/path&"


def test_base_path_only_strips_whole_segments():
    assert relative_path("/jira-apps/panel", "/jira-app") == "/jira-apps/panel"
    assert relative_path("/jira-app", "/jira-app") == "/"
