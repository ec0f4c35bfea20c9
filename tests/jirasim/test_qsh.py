"""jirasim.qsh against the published and computed vectors (connect-protocol.md §3.5)."""
from __future__ import annotations

import pytest

from jirasim.qsh import canonical_request, qsh, qsh_for_url

HELLO_QUERY = ("lic=none&tz=Australia%2FSydney&cp=%2Fjira&user_key=&loc=en-US&user_id=&jwt=abc.def.ghi"
               "&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_c=channel-servlet-hello-world&xdm_p=1")
HELLO_CANONICAL_QUERY = ("cp=%2Fjira&lic=none&loc=en-US&tz=Australia%2FSydney&user_id=&user_key=&xdm_c=channel-servlet-hello-world"
                         "&xdm_e=http%3A%2F%2Fstorm%3A2990&xdm_p=1")


@pytest.mark.parametrize(("method", "path", "query", "canonical", "expected"), [
    ("GET", "/path", "", "GET&/path&", "799be84a7fa35570087163c0cd9af3abff7ac05c2c12ba0bb1d7eebc984b3ac2"),
    ("GET", "", "", "GET&/&", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"),
    ("GET", "/", "", "GET&/&", "c88caad15a1c1a900b8ac08aa9686f4e8184539bea1deda36e2f649430df3239"),
    ("GET", "/hello-world", HELLO_QUERY, "GET&/hello-world&" + HELLO_CANONICAL_QUERY,
     "8063ff4ca1e41df7bc90c8ab6d0f6207d491cf6dad7c66ea797b4614b71922e9"),
    ("POST", "/hello-world", HELLO_QUERY, "POST&/hello-world&" + HELLO_CANONICAL_QUERY,
     "d7e7f00660965fc15745b2c423a89b85d0853c4463faca362e0371d008eb0927"),
    ("POST", "/hello-world", "", "POST&/hello-world&", "6f95f3738e1b037a3bebbe0ad237d80fdbc1d5ae452e98ce03a9c004c178ebb4"),
    ("GET", "/path/to/service",
     "zee_last=param&repeated=parameter%201&first=param&repeated=parameter%202&repeated=Parameter%202",
     "GET&/path/to/service&first=param&repeated=Parameter%202,parameter%201,parameter%202&zee_last=param",
     "9ae6056cf66c00e76fa15e66fd26091fecd7356eec2f2c30629835b656799f66"),
    ("GET", "/hello-world", "a&b=foo&c", "GET&/hello-world&a=&b=foo&c=",
     "05a07346264b590803b827ab297a7fcb7e250fe5fa8c66187a9131b0934496b2"),
    ("GET", "/path/to/service", "first=param&repeated=parameter%201&repeated=parameter%202&zee_last=param",
     "GET&/path/to/service&first=param&repeated=parameter%201,parameter%202&zee_last=param",
     "e52bb281606c3bd9ca16cfe96fe2df78f5d9ffa126f06befd750dfa10fa1a897"),
    ("POST", "/installed", "", "POST&/installed&", "4a2e1de8ca74e6cafe8862d332fa3ac7a8e51e692bc6d798ea4dfedc14948bf4"),
    ("POST", "/uninstalled", "", "POST&/uninstalled&", "8a8d06f040b246544d605b08aeb419e30b5cf0e200f512888486585ecce6a52e"),
    ("POST", "/webhooks/issue-created", "", "POST&/webhooks/issue-created&",
     "8b7666d39455afda7acc6ac32b76641eb73098ff5db40ad0c713e6d1c842a886"),
    ("GET", "/rest/api/3/issue/ABC-1", "expand=changelog,renderedFields",
     "GET&/rest/api/3/issue/ABC-1&expand=changelog%2CrenderedFields",
     "21d48f87ede77f9456f63201c559d9966444828a6e8fa6d0d3aa01f5c6256429"),
    ("GET", "/rest/api/3/search", 'jql=project = ABC AND status = "In Progress"&maxResults=50',
     "GET&/rest/api/3/search&jql=project%20%3D%20ABC%20AND%20status%20%3D%20%22In%20Progress%22&maxResults=50",
     "2dce18e57551434aa195525b0596ef9deffc446560b00932c0c323ffc4183e25"),
    ("GET", "/rest/api/3/search", "jql=project+%3D+ABC&fields=summary&fields=status",
     "GET&/rest/api/3/search&fields=status,summary&jql=project%20%3D%20ABC",
     "d3d662ec486b12cead0aaae9350d396e460841459feedd87397fb665c07730f3"),
    ("GET", "/panel",
     "issueKey=ABC-1&projectKey=ABC&lic=none&cp=&xdm_e=https%3A%2F%2Fexample.atlassian.net&xdm_c=channel-x"
     "&cv=1001.0.0-SNAPSHOT&jwt=xyz",
     "GET&/panel&cp=&cv=1001.0.0-SNAPSHOT&issueKey=ABC-1&lic=none&projectKey=ABC&xdm_c=channel-x"
     "&xdm_e=https%3A%2F%2Fexample.atlassian.net",
     "4a353d6630c81e901a3627bd7b1f5dcf989ceb8be49e579c50168e2358654d5e"),
])
def test_vectors(method: str, path: str, query: str, canonical: str, expected: str) -> None:
    assert canonical_request(method, path, query) == canonical
    assert qsh(method, path, query) == expected


def test_base_path_is_stripped() -> None:
    assert canonical_request("GET", "/jira-app/panel", "issueKey=ABC-1", base_path="/jira-app") == "GET&/panel&issueKey=ABC-1"
    assert qsh_for_url("GET", "https://app.example/jira-app/panel?issueKey=ABC-1", "https://app.example/jira-app") == \
        "9e8a0822ed19a8ed0c2ba0c001a2a721b7a3a2af8985cab2ed6d79648b101971"


def test_ampersand_in_path_and_trailing_slash() -> None:
    assert canonical_request("POST", "/rest/api/2/project&a=b", "x=y") == "POST&/rest/api/2/project%26a=b&x=y"
    assert canonical_request("POST", "/jira/rest/api/2/project/jira&a=b&c=d", "x=y", base_path="/jira") == \
        "POST&/rest/api/2/project/jira%26a=b%26c=d&x=y"
    assert canonical_request("get", "/path/", "") == "GET&/path&"


def test_method_is_uppercased_and_jwt_ignored() -> None:
    assert qsh("get", "/path", "jwt=whatever") == qsh("GET", "/path", "")
