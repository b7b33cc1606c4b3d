// Signoff's approver page: the open requests, and one request with its checks, approvals,
// activity trail and the decisions the viewer may take.
//
// Rules this file keeps:
// - The page holds no credential: the browser's session cookie is HttpOnly (the script never
//   sees it); the script keeps only the session's CSRF token, in memory, and sends it in
//   X-CSRF-Token with every state-changing call.
// - Data from the API reaches the page only through textContent and DOM APIs, never as HTML.
"use strict";

(() => {
  const API = "/api/2.0";
  const CSRF_HEADER = "X-CSRF-Token";
  const REFRESH_MS = 2500;
  const OPEN_STATES = new Set(["PENDING", "APPLYING"]);

  const $ = (id) => document.getElementById(id);

  // -- DOM helpers: text only ---------------------------------------------------------------

  /** An element with a class and children; strings become text nodes. */
  function el(tag, className, ...children) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function when(ms) {
    if (typeof ms !== "number") return "";
    return new Date(ms).toLocaleString();
  }

  function stage(value) {
    return value === null || value === undefined || value === "" ? "None" : String(value);
  }

  // -- messages -----------------------------------------------------------------------------

  function showMessage(text, kind = "error") {
    const box = $("message");
    box.textContent = text;
    box.className = `message ${kind}`;
    show(box, true);
  }

  function clearMessage() {
    const box = $("message");
    box.textContent = "";
    show(box, false);
  }

  // -- the session ------------------------------------------------------------------------

  /** What /ui/api/session said last: who is signed in, the CSRF token, the sign-ins offered. */
  let session = null;

  function signedIn() {
    return Boolean(session && session.signed_in);
  }

  async function loadSession() {
    let response;
    try {
      response = await fetch("/ui/api/session", {
        credentials: "same-origin",
        cache: "no-store",
        headers: { Accept: "application/json" },
      });
    } catch {
      throw new ApiError(0, "UNREACHABLE", "The Signoff API did not answer; is it running?");
    }
    if (!response.ok) throw new ApiError(response.status, "ERROR", `the API answered ${response.status}`);
    session = await response.json();
    return session;
  }

  function showIdentity() {
    const who = $("whoami");
    if (!signedIn()) {
      show(who, false);
      show($("signout"), false);
      return;
    }
    const roles = Array.isArray(session.roles) ? session.roles.join(", ") : "";
    who.textContent = roles ? `${session.subject} (${roles})` : session.subject;
    show(who, true);
    show($("signout"), true);
  }

  class AuthRequired extends Error {}

  function renderSignInChoices() {
    const offered = session || {};
    const back = window.location.pathname + window.location.search;
    $("sign-in-oidc").href = `/ui/auth/login?return_to=${encodeURIComponent(back)}`;
    show($("sign-in-oidc-box"), Boolean(offered.oidc_sign_in));
    show($("dev-login-form"), Boolean(offered.dev_sign_in));
    show($("no-sign-in"), !offered.oidc_sign_in && !offered.dev_sign_in);
    const roles = Array.isArray(offered.dev_roles) ? offered.dev_roles : [];
    const boxes = roles.map((role) => {
      const input = el("input");
      input.type = "checkbox";
      input.value = role;
      input.name = "dev-role";
      const label = el("label", "inline", input, ` ${role}`);
      return label;
    });
    $("dev-roles").replaceChildren(el("legend", null, "Roles"), ...boxes);
  }

  /** Nobody is signed in (or the session ended): hide every view and offer the sign-in. */
  function askToSignIn(reason) {
    if (session) {
      session.signed_in = false;
      session.csrf_token = null;
    }
    stopRefresh();
    showIdentity();
    show($("list-view"), false);
    show($("request-view"), false);
    $("login-reason").textContent = reason || "";
    renderSignInChoices();
    show($("login"), true);
  }

  // -- the API ------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  /** Call the API with the session cookie (and the CSRF token on state-changing calls). 401
   *  offers the sign-in again; other errors throw ApiError with the API's own message
   *  (MLflow's shape: {error_code, message}). */
  async function api(method, path, { query, body, base = API } = {}) {
    if (!signedIn()) {
      askToSignIn("");
      throw new AuthRequired();
    }
    const url = new URL(base + path, window.location.origin);
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
    const headers = { Accept: "application/json" };
    if (method !== "GET") headers[CSRF_HEADER] = session.csrf_token;
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(url, init);
    } catch {
      throw new ApiError(0, "UNREACHABLE", "The Signoff API did not answer; is it running?");
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null;
    }
    if (response.status === 401) {
      const why = data && typeof data.message === "string" ? data.message : "not accepted";
      askToSignIn(`Please sign in again (${why}).`);
      throw new AuthRequired();
    }
    if (!response.ok) {
      const code = data && typeof data.error_code === "string" ? data.error_code : "ERROR";
      const message =
        data && typeof data.message === "string"
          ? data.message
          : `the API answered ${response.status}`;
      throw new ApiError(response.status, code, message);
    }
    return data || {};
  }

  function report(err) {
    if (err instanceof AuthRequired) return;
    if (err instanceof ApiError) {
      const prefix = err.status === 403 ? "Not allowed: " : "";
      showMessage(`${prefix}${err.message} (${err.code}${err.status ? `, ${err.status}` : ""})`);
      return;
    }
    showMessage(`Something went wrong in the page: ${err && err.message ? err.message : err}`);
  }

  // -- refresh ------------------------------------------------------------------------------

  let refreshTimer = null;

  function stopRefresh() {
    if (refreshTimer !== null) clearTimeout(refreshTimer);
    refreshTimer = null;
  }

  function scheduleRefresh(fn, ms = REFRESH_MS) {
    stopRefresh();
    refreshTimer = setTimeout(() => {
      refreshTimer = null;
      fn();
    }, ms);
  }

  // -- the list of requests -----------------------------------------------------------------

  function checksSummary(checks) {
    if (!Array.isArray(checks) || checks.length === 0) return "none";
    const counts = {};
    for (const check of checks) counts[check.status] = (counts[check.status] || 0) + 1;
    const order = ["RUNNING", "FAILED", "PASSED", "CANCELLED"];
    return order
      .filter((status) => counts[status])
      .map((status) => `${counts[status]} ${status === "RUNNING" ? "running" : status.toLowerCase()}`)
      .join(", ");
  }

  function stateBadge(state) {
    return el("span", `badge state-${String(state).toLowerCase()}`, state);
  }

  async function loadList() {
    const includeClosed = $("include-closed").checked;
    const data = await api("GET", "/signoff/transition-requests/search", {
      query: { open_only: includeClosed ? "false" : "true" },
    });
    const requests = Array.isArray(data.requests) ? data.requests.slice() : [];
    requests.sort((a, b) => (b.creation_timestamp || 0) - (a.creation_timestamp || 0));
    const rows = requests.map((request) => {
      const link = el("a", null, request.name);
      link.href = `/ui/requests/${encodeURIComponent(request.id)}`;
      const approvals = Array.isArray(request.approvals) ? request.approvals.length : 0;
      const row = el(
        "tr",
        null,
        el("td", "model", link),
        el("td", null, request.version),
        el("td", null, `${stage(request.from_stage)} → ${stage(request.to_stage)}`),
        el("td", null, request.user_id),
        el("td", null, when(request.creation_timestamp)),
        el("td", null, stateBadge(request.state)),
        el("td", null, checksSummary(request.checks)),
        el("td", null, `${approvals}/${request.quorum}`),
      );
      row.dataset.requestId = String(request.id);
      return row;
    });
    $("list-body").replaceChildren(...rows);
    show($("list-table"), rows.length > 0);
    show($("list-empty"), rows.length === 0);
    $("list-empty").textContent = includeClosed
      ? "No requests you can read."
      : "No open requests you can read.";
  }

  async function refreshList() {
    try {
      await loadList();
    } catch (err) {
      report(err);
      if (err instanceof AuthRequired) return;
    }
    scheduleRefresh(refreshList, REFRESH_MS * 4);
  }

  function attachListView() {
    $("include-closed").addEventListener("change", () => {
      clearMessage();
      refreshList();
    });
  }

  // -- one request --------------------------------------------------------------------------

  let current = null; // the request as last fetched
  let busy = false; // an action is in flight: no refresh meanwhile

  function detail(term, value, className) {
    return [el("dt", null, term), el("dd", className || null, value)];
  }

  function renderDetails(request) {
    $("request-title").replaceChildren(
      el("span", "model", request.name),
      ` version ${request.version}: ${stage(request.from_stage)} → ${stage(request.to_stage)}`,
    );
    document.title = `${request.name} v${request.version} → ${request.to_stage} · Signoff`;
    const rows = [
      ...detail("Model", request.name, "model"),
      ...detail("Version", String(request.version)),
      ...detail("Move", `${stage(request.from_stage)} → ${stage(request.to_stage)}`),
      ...detail("Requested by", request.user_id),
      ...detail("Requested at", when(request.creation_timestamp)),
      ...detail("Comment", request.comment || "—", "comment"),
      ...detail("State", stateBadge(request.state)),
    ];
    if (request.reason) rows.push(...detail("Reason", request.reason, "reason"));
    rows.push(...detail("Policy", request.policy_hash || "—", "mono"));
    rows.push(...detail("Last update", when(request.last_updated_timestamp)));
    $("request-details").replaceChildren(...rows);
  }

  function renderChecks(checks) {
    const list = Array.isArray(checks) ? checks : [];
    const items = list.map((check) => {
      const status = String(check.status);
      const label = status === "RUNNING" ? "RUNNING · still running" : status;
      const head = el(
        "div",
        "check-head",
        el("span", `badge check-${status.toLowerCase()}`, label),
        " ",
        el("span", "check-name", check.name),
        el("span", "muted", ` (${check.type})`),
      );
      const parts = [head];
      if (check.summary) parts.push(el("p", "check-summary", check.summary));
      else if (status === "RUNNING") parts.push(el("p", "check-summary muted", "waiting for a result…"));
      if (check.evidence && Object.keys(check.evidence).length > 0) {
        parts.push(el("pre", "evidence", JSON.stringify(check.evidence, null, 2)));
      }
      if (check.finished_timestamp) parts.push(el("p", "muted", `finished ${when(check.finished_timestamp)}`));
      const item = el("li", `check status-${status.toLowerCase()}`, ...parts);
      item.dataset.status = status;
      item.dataset.check = String(check.name);
      return item;
    });
    $("checks").replaceChildren(...items);
    show($("checks-empty"), items.length === 0);
  }

  function renderApprovals(request) {
    const approvals = Array.isArray(request.approvals) ? request.approvals : [];
    $("approvals-title").textContent = `Approvals ${approvals.length}/${request.quorum}`;
    const items = approvals.map((approval) =>
      el(
        "li",
        null,
        el("strong", null, approval.user_id),
        ` approved ${when(approval.creation_timestamp)}`,
        approval.comment ? el("p", "comment", approval.comment) : null,
      ),
    );
    if (items.length === 0) items.push(el("li", "muted", "No approvals yet."));
    $("approvals").replaceChildren(...items);
  }

  function renderActions(request) {
    const actions = new Set(Array.isArray(request.available_actions) ? request.available_actions : []);
    const canApprove = actions.has("APPROVE_TRANSITION_REQUEST");
    const canReject = actions.has("REJECT_TRANSITION_REQUEST");
    const canCancel = actions.has("CANCEL_TRANSITION_REQUEST");
    show($("approve"), canApprove);
    show($("reject"), canReject);
    show($("cancel"), canCancel);
    show($("actions"), canApprove || canReject || canCancel);
  }

  const ACTIVITY_WORDS = {
    REQUESTED_TRANSITION: "requested",
    APPROVED_REQUEST: "approved",
    REJECTED_REQUEST: "rejected",
    CANCELLED_REQUEST: "cancelled",
    APPLIED_TRANSITION: "applied",
    SYSTEM_TRANSITION: "system transition",
    NEW_COMMENT: "commented",
  };

  const FLAGGED = /^(Out-of-band change|Break-glass)/;

  function renderActivities(activities, request) {
    const mine = (Array.isArray(activities) ? activities : []).filter(
      (activity) => !activity.request_id || activity.request_id === request.id,
    );
    const items = mine.map((activity) => {
      const word = ACTIVITY_WORDS[activity.activity_type] || activity.activity_type;
      const move =
        activity.to_stage !== undefined
          ? ` ${stage(activity.from_stage)} → ${stage(activity.to_stage)}`
          : "";
      const item = el(
        "li",
        null,
        el("span", "muted", when(activity.creation_timestamp)),
        " ",
        el("strong", null, activity.user_id || "system"),
        ` ${word}${move}`,
        activity.comment ? el("p", "comment", activity.comment) : null,
        activity.system_comment ? el("p", "muted", activity.system_comment) : null,
      );
      item.dataset.type = String(activity.activity_type);
      // Changes that skipped the governed path stand out: made behind Signoff's back, or
      // applied without approvals.
      if (FLAGGED.test(activity.system_comment || "")) item.classList.add("flagged");
      return item;
    });
    if (items.length === 0) items.push(el("li", "muted", "Nothing recorded yet."));
    $("activities").replaceChildren(...items);
  }

  async function loadRequest(id) {
    const data = await api("GET", "/signoff/transition-requests/get", { query: { id } });
    const request = data.request;
    current = request;
    renderDetails(request);
    renderChecks(request.checks);
    renderApprovals(request);
    renderActions(request);
    show($("request-view"), true);
    try {
      const trail = await api("GET", "/signoff/activities/list", {
        query: { name: request.name, version: request.version },
      });
      renderActivities(trail.activities, request);
    } catch (err) {
      if (err instanceof AuthRequired) throw err;
      // The version may be gone from MLflow; the request itself is still worth showing.
      $("activities").replaceChildren(el("li", "muted", `Activity unavailable: ${err.message}`));
    }
    return request;
  }

  async function refreshRequest(id) {
    if (busy) return;
    let request = null;
    try {
      request = await loadRequest(id);
    } catch (err) {
      report(err);
      if (err instanceof AuthRequired) return;
      if (err instanceof ApiError && (err.status === 403 || err.status === 404 || err.status === 400)) {
        return; // asking again will not change the answer
      }
    }
    const open = request === null || OPEN_STATES.has(request.state);
    show($("refresh-note"), open);
    if (open) scheduleRefresh(() => refreshRequest(id));
  }

  async function decide(id, action) {
    if (!current || busy) return;
    busy = true;
    stopRefresh();
    clearMessage();
    const buttons = [$("approve"), $("reject"), $("cancel")];
    for (const button of buttons) button.disabled = true;
    const comment = $("action-comment").value.trim() || undefined;
    const target = { name: current.name, version: String(current.version), stage: current.to_stage };
    try {
      if (action === "approve") {
        await api("POST", "/mlflow/transition-requests/approve", {
          body: { ...target, archive_existing_versions: false, comment },
        });
      } else if (action === "reject") {
        await api("POST", "/mlflow/transition-requests/reject", { body: { ...target, comment } });
      } else {
        await api("DELETE", "/mlflow/transition-requests/delete", {
          query: { ...target, creator: current.user_id, comment },
        });
      }
      $("action-comment").value = "";
      const done = { approve: "Approved.", reject: "Rejected.", cancel: "Cancelled." }[action];
      showMessage(done, "info");
    } catch (err) {
      report(err);
    } finally {
      for (const button of buttons) button.disabled = false;
      busy = false;
    }
    if (signedIn()) refreshRequest(id);
  }

  function attachRequestView(id) {
    document.title = "Request · Signoff";
    $("approve").addEventListener("click", () => decide(id, "approve"));
    $("reject").addEventListener("click", () => decide(id, "reject"));
    $("cancel").addEventListener("click", () => decide(id, "cancel"));
  }

  // -- routing and start --------------------------------------------------------------------

  let started = false;

  /** Show the view the address names, for whoever is signed in now. Run at start and after
   *  every sign-in without a reload: the view is shown again each time (listeners are attached
   *  once only). */
  function route() {
    show($("login"), false);
    showIdentity();
    const match = window.location.pathname.match(/^\/ui\/requests\/([^/]+)\/?$/);
    if (!started) {
      started = true;
      if (match) attachRequestView(decodeURIComponent(match[1]));
      else attachListView();
    }
    if (match) {
      show($("request-view"), true);
      refreshRequest(decodeURIComponent(match[1]));
    } else {
      document.title = "Open requests · Signoff";
      show($("list-view"), true);
      refreshList();
    }
  }

  async function devSignIn(event) {
    event.preventDefault();
    clearMessage();
    const subject = $("dev-user").value.trim();
    const roles = Array.from(document.querySelectorAll("input[name=dev-role]:checked"), (box) => box.value);
    let response;
    try {
      response = await fetch("/ui/auth/dev-login", {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({ subject, roles }),
      });
    } catch {
      showMessage("The Signoff API did not answer; is it running?");
      return;
    }
    const data = await response.json().catch(() => null);
    if (!response.ok || !data || !data.signed_in) {
      const why = data && typeof data.message === "string" ? data.message : `HTTP ${response.status}`;
      askToSignIn(`The sign-in was refused (${why}).`);
      return;
    }
    session = data;
    route();
  }

  async function signOut() {
    clearMessage();
    try {
      await fetch("/ui/auth/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { [CSRF_HEADER]: (session && session.csrf_token) || "", Accept: "application/json" },
      });
    } catch {
      // Signed out locally either way; the session also ends by itself.
    }
    await loadSession().catch(() => null);
    askToSignIn("Signed out.");
  }

  async function start() {
    $("dev-login-form").addEventListener("submit", devSignIn);
    $("signout").addEventListener("click", signOut);
    try {
      await loadSession();
    } catch (err) {
      report(err);
      return;
    }
    if (signedIn()) route();
    else askToSignIn("");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
