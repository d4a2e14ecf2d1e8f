"""What an integrator meets in Swagger UI (issue 21): the demo tenant as the example id, the
sign-in calls first, the authorization kept across reloads, one name for the tenant id."""
import pytest
import yaml


@pytest.fixture
def schema(client, db):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    return yaml.safe_load(response.content)


def test_the_sign_in_calls_come_first(schema):
    paths = list(schema["paths"])
    auth = [i for i, p in enumerate(paths) if "/v2/auth/" in p]
    assert auth == list(range(len(auth))) and len(auth) >= 6, paths
    assert paths[0].endswith("/auth/login")
    assert [t["name"] for t in schema["tags"]][0] == "Sign-in"


def test_tenant_id_has_the_demo_tenant_as_its_example_and_one_name_everywhere(schema):
    for path, operations in schema["paths"].items():
        assert "{tenant_id}" in path
        for method, operation in operations.items():
            params = {p["name"]: p for p in operation.get("parameters", [])}
            assert [e["value"] for e in params["tenant_id"]["examples"].values()] == ["demo"], (path, method)
    text = yaml.safe_dump(schema)
    assert "{tenantId}" not in text and "{tenant_id}" in schema["info"]["description"]


def test_swagger_ui_keeps_the_authorization(client, db):
    script = client.get("/api/docs/?script=").content.decode()
    assert '"persistAuthorization": true' in script
