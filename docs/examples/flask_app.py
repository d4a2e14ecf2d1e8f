"""A Flask application that signs its users in with Gatehouse, through OpenID Connect, with
Authlib's client. The README's "Integrate an application" walks through it; the end-to-end
suite (tests/e2e/test_oidc_rp.py) runs this very file against a real Gatehouse in Chromium.

Run it:

    pip install Flask Authlib requests
    export GATEHOUSE_ISSUER=https://auth.example.com/tenant/acme
    export CLIENT_ID=… CLIENT_SECRET=…        # from POST /tenant/acme/v2/Clients
    flask --app docs/examples/flask_app.py run --port 5000

Register the client with redirect URI http://127.0.0.1:5000/callback and post-logout
redirect URI http://127.0.0.1:5000/.
"""
import os
import secrets

from authlib.integrations.flask_client import OAuth
from flask import Flask, jsonify, redirect, session, url_for
from urllib.parse import urlencode


def create_app(*, issuer: str, client_id: str, client_secret: str | None, secret_key: str | None = None) -> Flask:
    app = Flask(__name__)
    app.secret_key = secret_key or secrets.token_urlsafe(32)
    oauth = OAuth(app)
    gatehouse = oauth.register(
        "gatehouse",
        client_id=client_id,
        client_secret=client_secret,
        # Discovery gives Authlib every endpoint and the JWKS it verifies ID tokens with.
        server_metadata_url=f"{issuer}/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )

    @app.get("/")
    def home():
        return jsonify(user=session.get("user"))

    @app.get("/login")
    def login():
        # Authlib adds state, nonce and the PKCE challenge; Gatehouse's own pages ask for the
        # password and the second factor the tenant requires.
        return gatehouse.authorize_redirect(url_for("callback", _external=True))

    @app.get("/callback")
    def callback():
        # Exchanges the code (with the PKCE verifier and the client secret) and validates the
        # ID token: signature from the tenant's JWKS, iss, aud, exp and the nonce.
        token = gatehouse.authorize_access_token()
        session["token"] = {k: token[k] for k in ("access_token", "refresh_token", "id_token", "expires_at")}
        session["user"] = dict(token["userinfo"])  # the ID token's claims: sub, amr, acr, auth_time …
        return redirect(url_for("home"))

    @app.get("/profile")
    def profile():
        return jsonify(gatehouse.userinfo(token=session["token"]))

    @app.get("/refresh")
    def refresh():
        token = gatehouse.fetch_access_token(grant_type="refresh_token", refresh_token=session["token"]["refresh_token"])
        session["token"] = {**session["token"], **{k: token[k] for k in ("access_token", "refresh_token", "expires_at")}}
        return jsonify(refreshed=True)

    @app.get("/logout")
    def logout():
        # RP-initiated logout. Gatehouse asks the person to confirm, then ends its session and
        # this client's tokens. (An id_token_hint would skip the question, but a JWT in a URL
        # ends up in every access log on the way.)
        session.clear()
        end_session = gatehouse.load_server_metadata()["end_session_endpoint"]
        query = urlencode({"client_id": client_id, "post_logout_redirect_uri": url_for("home", _external=True)})
        return redirect(f"{end_session}?{query}")

    return app


if os.environ.get("GATEHOUSE_ISSUER"):
    app = create_app(
        issuer=os.environ["GATEHOUSE_ISSUER"],
        client_id=os.environ["CLIENT_ID"],
        client_secret=os.environ.get("CLIENT_SECRET"),
        secret_key=os.environ.get("FLASK_SECRET_KEY"),
    )
