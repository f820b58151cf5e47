// The login form: POST /api/login (JSON), then the overview.
document.getElementById("login").addEventListener("submit", async (e) => {
  e.preventDefault();
  const msg = document.getElementById("msg");
  msg.textContent = "";
  const r = await fetch("/api/login", {method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({user: document.getElementById("user").value,
                          password: document.getElementById("password").value})});
  if (r.ok) { location.href = "/overview"; return; }
  let j = {}; try { j = await r.json(); } catch (_) {}
  msg.textContent = j.error || ("login failed (" + r.status + ")");
  msg.className = "msg refused";
});
