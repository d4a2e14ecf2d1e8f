from http import HTTPStatus


def test_login_page_renders(client, tenant):
    response = client.get(f"/tenant/{tenant.id}/login/")
    assert response.status_code == HTTPStatus.OK
    assert b'name="username"' in response.content


def test_email_code_goes_through_real_smtp(client, email_user, smtp_server):
    client.post(f"/tenant/{email_user.tenant_id}/login/", {"username": "emma", "password": "correct-horse-battery-9"})
    response = client.get(f"/tenant/{email_user.tenant_id}/mfa/verify/")
    assert response.status_code == HTTPStatus.OK
    assert len(smtp_server.messages) == 1
    assert "sign-in code" in smtp_server.messages[0]["Subject"]
