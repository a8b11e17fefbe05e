"""snapkeep-sim sends over STARTTLS with AUTH to the real snapkeepd
(require_tls, require_auth, a certificate the simulator verifies), and is
refused without TLS or with a wrong password, as an MTA would be."""
import importlib.util
import json
import os
import subprocess

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("smtplib_sk", os.path.join(here, "smtp-lib.py"))
sk = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sk)

tap = sk.Tap()
sk.require_tool(tap, "certtool", "gnutls-bin")
top = os.environ.get("SK_TOP_BUILDDIR", ".")
sim = os.path.join(top, "snapkeep-sim")

d = sk.Daemon(tap)
key = os.path.join(d.dir, "key.pem")
cert = os.path.join(d.dir, "cert.pem")
tmpl = os.path.join(d.dir, "cert.cfg")
with open(tmpl, "w") as f:
    f.write('cn = "127.0.0.1"\nip_address = "127.0.0.1"\nexpiration_days = 30\n'
            "tls_www_server\nencryption_key\nsigning_key\nca\ncert_signing_key\n")
subprocess.run(["certtool", "--generate-privkey", "--key-type", "ecdsa", "--outfile", key],
               check=True, capture_output=True)
subprocess.run(["certtool", "--generate-self-signed", "--load-privkey", key, "--template", tmpl,
                "--outfile", cert], check=True, capture_output=True)
users = sk.make_users(tap, d.dir, {"printer": "s3cret pass"})
d.settings["smtp"].update({"tls_cert_file": cert, "tls_key_file": key, "auth_users_file": users,
                           "require_tls": "true", "require_auth": "true"})
d.write_config()
d.start()
url = "smtp://127.0.0.1:%d" % d.port


def send(*extra, name):
    manifest = os.path.join(d.dir, name + ".jsonl")
    r = subprocess.run([sim, "--seed", "5", "--devices", "3", "--test", "--smtp", url,
                        "--max-attempts", "2", "--retry-base-ms", "50", "--manifest", manifest,
                        "-q"] + list(extra),
                       capture_output=True, text=True, timeout=120)
    lines = [json.loads(l) for l in open(manifest)] if os.path.exists(manifest) else []
    return r, lines


r, lines = send("--starttls", "--cacert", cert, "--user", "printer", "--password", "s3cret pass",
                name="good")
tap.eq(r.returncode, 0, "STARTTLS + AUTH with a verified certificate: the run succeeds")
stored = {row[0] for row in d.query("SELECT sha256 FROM intake_log")}
tap.eq(len(stored), 3, "three snapshots arrived")
tap.ok(all(l.get("sha256") in stored for l in lines), "each one the simulator sent, byte for byte",
       [l.get("sha256") for l in lines])

r, _ = send("--starttls", "--cacert", cert, "--user", "printer", "--password", "wrong", name="badpw")
tap.ok(r.returncode != 0, "a wrong password fails the run", r.stderr[-500:])
r, _ = send(name="plain")
tap.ok(r.returncode != 0, "without STARTTLS the daemon refuses (require_tls)", r.stderr[-500:])
r, _ = send("--starttls", "--user", "printer", "--password", "s3cret pass", name="noca")
tap.ok(r.returncode != 0, "an unverifiable certificate is refused by the simulator", r.stderr[-500:])
tap.eq(len(d.query("SELECT id FROM intake_log")), 3, "nothing else was stored")
tap.eq(d.stop(), 0, "snapkeepd stops cleanly")
d.cleanup()
tap.done()
