// The login page: exchanges a user name and password (or an admin token) for a session cookie
// (HttpOnly, so this script never sees it) and goes to the UI.
const form = document.getElementById('login-form');
const error = document.getElementById('login-error');

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  error.hidden = true;
  const data = new FormData(form);
  const token = String(data.get('token') || '').trim();
  const body = token
    ? { token }
    : { username: String(data.get('username') || ''), password: String(data.get('password') || '') };
  try {
    const resp = await fetch('/api/auth/login', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
    });
    if (resp.ok) {
      location.replace('/');
      return;
    }
    const payload = await resp.json().catch(() => null);
    error.textContent = (payload && payload.error && payload.error.message) || `Login failed (${resp.status})`;
  } catch (e) {
    error.textContent = `Login failed: ${e.message}`;
  }
  error.hidden = false;
});
