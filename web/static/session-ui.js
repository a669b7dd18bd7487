// session-ui.js — the parts of the directive pages that deal with who is logged in: the
// login form, the log-out button, the connection badge and the notice line. The pages
// share the markup (see console.html and inbox.html: `data-testid` login-form, username,
// password, login, logout, account, state, notice).

import { describeError } from "./directive-text.js";

const $ = (testId, root = document) => root.querySelector(`[data-testid="${testId}"]`);

/** Shows `phase` (loggedOut | connecting | live | reconnecting | disconnected) in the badge. */
export function showPhase(phase, t) {
  const badge = $("state");
  if (!badge) return;
  badge.dataset.state = phase === "loggedOut" ? "idle" : phase;
  const label = badge.querySelector(".state-text");
  label.dataset.i18n = `state.${phase}`;
  label.textContent = t(`state.${phase}`);
}

/** Shows `message` in the notice line (`kind` "error" or "info"); null hides it. */
export function showNotice(message, kind = "error") {
  const notice = $("notice");
  if (!notice) return;
  notice.hidden = !message;
  notice.dataset.kind = kind;
  notice.textContent = message ?? "";
}

/**
 * Wires the login form and the log-out button. `onLogin(reply)` runs after a successful
 * login (and is the page's way in); `onLogout()` after the session ends for any reason.
 */
export function bindSession({ session, t, onLogin, onLogout }) {
  const form = $("login-form");
  const button = $("login");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const username = $("username").value.trim();
    const password = $("password").value;
    if (!username || !password) return;
    button.disabled = true;
    button.textContent = t("loggingIn");
    try {
      const reply = await session.login(username, password);
      $("password").value = "";
      showNotice(null);
      onLogin(reply);
    } catch (error) {
      showNotice(t("loginFailed", { reason: describeError(error, t) }));
    } finally {
      button.disabled = false;
      button.textContent = t("loginButton");
    }
  });
  $("logout").addEventListener("click", () => session.logout());
  session.addEventListener("logout", ({ detail }) => {
    if (detail.reason) showNotice(t("sessionEnded", { reason: detail.reason }));
    onLogout();
  });
}

/** Shows the login form or the logged-in part of the page (`[data-logged-in]`). */
export function showLoggedIn(loggedIn, account, t) {
  $("login-section").hidden = loggedIn;
  for (const element of document.querySelectorAll("[data-logged-in]")) element.hidden = !loggedIn;
  const label = $("account");
  if (label) {
    label.textContent = account ? `${account.display_name ?? account.username} · ${t(`role.${account.role}`)}` : "";
  }
}
