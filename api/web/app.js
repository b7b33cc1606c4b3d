// Signoff's approver page: the inbox (what waits for you, your requests, what was decided), one
// request with its evidence, policy, decisions, discussion and trail, and one model.
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
  const OPEN_STATES = new Set(["PENDING", "SCHEDULED", "APPLYING"]);

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

  /** Redraw a part of the page only when what it shows has changed, so a refresh does not
   *  take the keyboard focus away, close an opened detail, or swap a button being clicked. */
  const drawn = new WeakMap();
  function redraw(node, data, build) {
    const key = JSON.stringify(data);
    if (drawn.get(node) === key) return;
    drawn.set(node, key);
    node.replaceChildren(...build());
  }

  function forget(node) {
    drawn.delete(node);
  }

  function show(node, visible) {
    node.hidden = !visible;
  }

  function when(ms) {
    if (typeof ms !== "number") return "";
    return new Date(ms).toLocaleString();
  }

  /** "3 h", "2 d": how long ago (or, for a future time, how long until). */
  function span(ms) {
    const s = Math.abs(ms) / 1000;
    if (s < 90) return `${Math.round(s)} s`;
    if (s < 5400) return `${Math.round(s / 60)} min`;
    if (s < 129600) return `${Math.round(s / 3600)} h`;
    return `${Math.round(s / 86400)} d`;
  }

  function ago(ms) {
    return typeof ms === "number" ? `${span(Date.now() - ms)} ago` : "";
  }

  /** An instant on the viewer's clock, with its zone: "Thu 2026-04-02 09:00 Asia/Tokyo (GMT+9)". */
  function localTime(ms) {
    const format = new Intl.DateTimeFormat("en-US", {
      weekday: "short", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "short",
    });
    const parts = {};
    for (const part of format.formatToParts(new Date(ms))) parts[part.type] = part.value;
    const zone = format.resolvedOptions().timeZone;
    const offset = parts.timeZoneName && parts.timeZoneName !== zone ? ` (${parts.timeZoneName})` : "";
    return `${parts.weekday} ${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute} ${zone}${offset}`;
  }

  /** "512 bytes", "4.9 KB", "1.2 GB". */
  function bytes(n) {
    if (typeof n !== "number") return "";
    if (n < 1024) return `${n} bytes`;
    const units = ["KB", "MB", "GB", "TB"];
    let value = n / 1024;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(1)} ${units[unit]}`;
  }

  function rollbackBadge() {
    return el("span", "badge rollback", "rollback");
  }

  function until(ms) {
    if (typeof ms !== "number") return "—";
    return ms <= Date.now() ? "due now" : `in ${span(ms - Date.now())}`;
  }

  function link(href, text, className) {
    const a = el("a", className || null, text);
    a.href = href;
    return a;
  }

  /** A cell with its column's name, shown as a caption when the table stacks on a phone. */
  function cell(label, className, ...children) {
    const td = el("td", className, ...children);
    td.dataset.label = label;
    return td;
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
    for (const id of ["list-view", "request-view", "model-view", "bad-link"]) show($(id), false);
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

  // -- the inbox ----------------------------------------------------------------------------

  // Keyset pages: `tokens[i]` is the page token of page i + 1 (null for the first).
  const inbox = { tab: "waiting", tokens: [null], pageSize: 25 };

  function firstPage() {
    inbox.tokens = [null];
  }

  function checksSummary(checks) {
    const parts = [];
    if (checks.passed) parts.push(`${checks.passed} passed`);
    if (checks.running) parts.push(`${checks.running} running`);
    if (checks.failed) parts.push(`${checks.failed} failed`);
    if (checks.other) parts.push(`${checks.other} other`);
    return parts.length ? parts.join(", ") : "none";
  }

  function stateBadge(state) {
    return el("span", `badge state-${String(state).toLowerCase()}`, state);
  }

  // A tab's count stops at the API's cap (counts.cap): "1,000+" says there are more.
  function countText(n, capped) {
    return capped ? `${n.toLocaleString("en-US")}+` : String(n);
  }

  function approvalsCell(row) {
    const open = OPEN_STATES.has(row.state);
    const text = `${row.approvals}/${row.quorum}`;
    return open && row.approvals_needed > 0 ? `${text} · ${row.approvals_needed} more needed` : text;
  }

  async function loadList() {
    const data = await api("GET", "/inbox", {
      base: "/ui/api",
      query: {
        tab: inbox.tab,
        model: $("filter-model").value,
        target: $("filter-target").value,
        state: $("filter-state").value,
        page_token: inbox.tokens[inbox.tokens.length - 1] || "",
        page_size: inbox.pageSize,
      },
    });
    const capped = new Set(data.counts.capped || []);
    for (const name of ["waiting", "mine", "decided"]) {
      $(`count-${name}`).textContent = `(${countText(data.counts[name], capped.has(name))})`;
      const tab = $(`tab-${name}`);
      tab.setAttribute("aria-selected", String(name === inbox.tab));
      tab.classList.toggle("selected", name === inbox.tab);
    }
    const chosen = $("filter-model").value;
    const names = Array.from(new Set([...(data.models || []), ...(chosen ? [chosen] : [])])).sort();
    redraw($("filter-model"), names, () => {
      const all = el("option", null, "all");
      all.value = "";
      return [all, ...names.map((name) => el("option", null, name))];
    });
    $("filter-model").value = chosen;
    const rows = (data.rows || []).map((row) => {
      const tr = el(
        "tr",
        null,
        cell("Model", "model", link(`/ui/requests/${encodeURIComponent(row.id)}`, row.name)),
        cell("Version", null, row.version),
        cell("Move", null, `${stage(row.from_stage)} → ${stage(row.to_stage)}`, row.rollback ? rollbackBadge() : null),
        cell("Requested by", null, row.user_id),
        cell("Age", null, ago(row.creation_timestamp)),
        cell(
          "State",
          null,
          stateBadge(row.state),
          row.apply_at_timestamp ? el("span", "muted apply-at", ` applies ${until(row.apply_at_timestamp)}`) : null,
        ),
        cell("Checks", null, checksSummary(row.checks)),
        cell("Approvals", null, approvalsCell(row)),
        cell("Expires", null, until(row.expires_timestamp)),
      );
      tr.dataset.requestId = String(row.id);
      return tr;
    });
    // Ages are shown to the minute: redrawn when a row or the minute changes.
    redraw($("list-body"), [data.rows || [], Math.floor(Date.now() / 60000)], () => rows);
    show($("list-table"), rows.length > 0);
    show($("list-empty"), rows.length === 0);
    $("list-empty").textContent = {
      waiting: "Nothing waits for your decision.",
      mine: "You have no requests.",
      decided: "Nothing decided yet.",
    }[inbox.tab];
    const pages = Math.max(1, Math.ceil(data.total / inbox.pageSize));
    const page = inbox.tokens.length;
    inbox.next = data.next_page_token || null;
    const of = data.total_capped ? `over ${Math.max(page, pages)}` : `${Math.max(page, pages)}`;
    const all = countText(data.total, data.total_capped);
    $("page-info").textContent = `page ${page} of ${of} · ${all} in all`;
    $("prev-page").disabled = page <= 1;
    $("next-page").disabled = !inbox.next;
  }

  /** Break-glass reviews the viewer may acknowledge, most pressing first, with an overdue
   *  badge; acknowledging one is a POST with the CSRF token (`api`). */
  async function loadReviews() {
    const data = await api("GET", "/signoff/break-glass/reviews/list", { query: { mine: "true" } });
    const reviews = data.reviews || [];
    redraw($("reviews-body"), [reviews, Math.floor(Date.now() / 60000)], () =>
      reviews.map((review) => {
        const button = el("button", null, "Acknowledge");
        button.type = "button";
        button.addEventListener("click", () => acknowledgeReview(review.id, button));
        const due = review.overdue
          ? el("span", "badge state-failed", "overdue")
          : until(review.deadline_timestamp);
        const tr = el(
          "tr",
          null,
          cell("Model", "model", review.name),
          cell("Version", null, review.version),
          cell("Move", null, `${stage(review.from_stage)} → ${stage(review.to_stage)}`),
          cell("Moved by", null, review.mover),
          cell("Why", null, review.comment || ""),
          cell("Due", null, due),
          cell("", null, button),
        );
        tr.dataset.reviewId = String(review.id);
        return tr;
      }),
    );
    show($("reviews"), reviews.length > 0);
  }

  async function acknowledgeReview(id, button) {
    button.disabled = true;
    clearMessage();
    try {
      await api("POST", "/signoff/break-glass/reviews/acknowledge", { body: { id } });
      forget($("reviews-body"));
      await loadReviews();
    } catch (err) {
      report(err);
      button.disabled = false;
    }
  }

  async function refreshList() {
    try {
      await Promise.all([loadList(), loadReviews()]);
    } catch (err) {
      report(err);
      if (err instanceof AuthRequired) return;
    }
    scheduleRefresh(refreshList, REFRESH_MS * 4);
  }

  function attachListView() {
    for (const name of ["waiting", "mine", "decided"]) {
      $(`tab-${name}`).addEventListener("click", () => {
        inbox.tab = name;
        firstPage();
        clearMessage();
        refreshList();
      });
    }
    for (const id of ["filter-model", "filter-target", "filter-state"]) {
      $(id).addEventListener("change", () => {
        firstPage();
        refreshList();
      });
    }
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("prev-page").addEventListener("click", () => {
      if (inbox.tokens.length > 1) inbox.tokens.pop();
      refreshList();
    });
    $("next-page").addEventListener("click", () => {
      if (inbox.next) inbox.tokens.push(inbox.next);
      refreshList();
    });
  }

  // -- one request --------------------------------------------------------------------------

  let current = null; // the request as last fetched
  let extras = null; // what /ui/api/requests/<id> said last
  let busy = false; // an action is in flight: no refresh meanwhile
  let editing = false; // a comment is being edited: the thread is not redrawn meanwhile

  const REQUEST_ID = /^[0-9a-f]{1,64}$/;

  function detail(term, value, className) {
    return [el("dt", null, term), el("dd", className || null, value)];
  }

  function renderDetails(request) {
    $("request-title").replaceChildren(
      el("span", "model", request.name),
      ` version ${request.version}: ${stage(request.from_stage)} → ${stage(request.to_stage)}`,
      request.rollback ? rollbackBadge() : null,
    );
    document.title = `${request.name} v${request.version} → ${request.to_stage} · Signoff`;
    $("model-link").textContent = `model ${request.name}`;
    $("model-link").href = `/ui/models/${encodeURIComponent(request.name)}`;
    const rows = [
      ...detail("Model", request.name, "model"),
      ...detail("Version", String(request.version)),
      ...detail("Move", `${stage(request.from_stage)} → ${stage(request.to_stage)}`),
      ...detail("Requested by", request.user_id),
      ...detail("Requested at", `${when(request.creation_timestamp)} (${ago(request.creation_timestamp)})`),
      ...detail("Comment", request.comment || "—", "comment"),
      ...detail("State", stateBadge(request.state)),
    ];
    if (request.state === "SCHEDULED" && typeof request.apply_at === "number") {
      rows.push(...detail("Applies at", `${localTime(request.apply_at)} (${until(request.apply_at)})`, "apply-at"));
    }
    if (request.reason) rows.push(...detail("Reason", request.reason, "reason"));
    const tier = Object.entries(request.tier || {}).map(([key, value]) => `${key}=${value}`);
    if (tier.length) rows.push(...detail("Risk tier", tier.join(", "), "tier"));
    if (request.rollback) {
      const replaced = request.rollback.replaces_version;
      const words = replaced ? `replaces version ${replaced}, which holds ${request.to_stage} now` : `nothing holds ${request.to_stage} now`;
      rows.push(...detail("Rollback", words, "rollback"));
    }
    if (extras && extras.expires_timestamp) {
      rows.push(...detail("Expires", `${when(extras.expires_timestamp)} (${until(extras.expires_timestamp)})`));
    }
    rows.push(...detail("Last update", when(request.last_updated_timestamp)));
    $("request-details").replaceChildren(...rows);
  }

  function renderExtras(request) {
    if (!extras) return;
    const links = [link(extras.mlflow_version_url, `version ${request.version} in MLflow`)];
    if (extras.mlflow_run_url) links.push(" · ", link(extras.mlflow_run_url, `run ${extras.run_id}`));
    for (const a of links) if (a instanceof Node && a.tagName === "A") a.rel = "noopener noreferrer";
    $("mlflow-links").replaceChildren(...links);
    $("holder").textContent = extras.holder ? extras.holder.effect : "Nothing else changes.";
    $("policy-words").textContent = extras.policy_words || "No rule of today's policy covers this move.";
    $("policy-hash").textContent = extras.policy_hash;
    show($("policy-changed"), !extras.policy_is_current);
  }

  /** What the approvals approve: the artifacts' digest pinned when the request opened. */
  function renderDigest(request) {
    const digest = request.digest;
    const note = $("digest-note");
    if (!digest) {
      $("digest").textContent = OPEN_STATES.has(request.state)
        ? "The artifacts' digest is being taken…"
        : "No artifact digest was pinned for this request.";
      show(note, false);
      return;
    }
    const files = digest.file_count === 1 ? "1 file" : `${digest.file_count} files`;
    const listed = digest.listed ? `${files}, ${bytes(digest.total_bytes)} in all` : "files not listed";
    $("digest").replaceChildren(
      `${listed} · sha256 `,
      el("code", "mono", String(digest.sha256).slice(0, 12)),
      digest.source ? el("span", "muted", ` · ${digest.source}`) : null,
    );
    note.textContent = digest.note || "";
    show(note, Boolean(digest.note));
  }

  function renderChecks(checks) {
    const list = Array.isArray(checks) ? checks : [];
    show($("checks-empty"), list.length === 0);
    redraw($("checks"), list, () => list.map((check) => {
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
        const evidence = el("details", "evidence-box", el("summary", null, "Evidence"));
        evidence.open = true;
        evidence.append(el("pre", "evidence", JSON.stringify(check.evidence, null, 2)));
        parts.push(evidence);
      }
      if (check.finished_timestamp) parts.push(el("p", "muted", `finished ${when(check.finished_timestamp)}`));
      const item = el("li", `check status-${status.toLowerCase()}`, ...parts);
      item.dataset.status = status;
      item.dataset.check = String(check.name);
      return item;
    }));
  }

  /** " · ml-lead, risk-officer": the roles a decision was made in, when they are known. */
  function asRoles(roles) {
    if (!Array.isArray(roles) || roles.length === 0) return [];
    return [" · ", el("span", "roles", roles.join(", "))];
  }

  function renderApprovals(request) {
    const approvals = Array.isArray(request.approvals) ? request.approvals : [];
    $("approvals-title").textContent = `Approvals ${approvals.length}/${request.quorum}`;
    const items = approvals.map((approval) => {
      const item = el(
        "li",
        "decision approved",
        el("span", "badge state-applied", "APPROVED"),
        " ",
        el("strong", null, approval.user_id),
        ...asRoles(approval.roles),
        ` ${when(approval.creation_timestamp)}`,
        approval.comment ? el("p", "comment", approval.comment) : null,
      );
      item.dataset.kind = "APPROVED";
      return item;
    });
    const others = extras && Array.isArray(extras.decisions) ? extras.decisions : [];
    for (const decision of others) {
      if (decision.kind === "APPROVED") continue;
      const item = el(
        "li",
        `decision ${decision.kind.toLowerCase()}`,
        el("span", `badge state-${decision.kind.toLowerCase()}`, decision.kind),
        " ",
        el("strong", null, decision.user_id),
        ...asRoles(decision.roles),
        ` ${when(decision.creation_timestamp)}`,
        decision.comment ? el("p", "comment", decision.comment) : null,
      );
      item.dataset.kind = decision.kind;
      items.push(item);
    }
    if (items.length === 0) {
      const open = OPEN_STATES.has(request.state);
      items.push(el("li", "muted", open ? "No decisions yet." : `No approvals; the request is ${request.state}.`));
    }
    redraw($("approvals"), [request.state, approvals, others], () => items);
  }

  const ACTION_WORDS = { approve: "approve", reject: "reject", cancel: "cancel" };

  function renderActions(request) {
    const actions = new Set(Array.isArray(request.available_actions) ? request.available_actions : []);
    const canApprove = actions.has("APPROVE_TRANSITION_REQUEST");
    const canReject = actions.has("REJECT_TRANSITION_REQUEST");
    const canCancel = actions.has("CANCEL_TRANSITION_REQUEST");
    show($("approve"), canApprove);
    show($("reject"), canReject);
    show($("cancel"), canCancel);
    show($("actions"), canApprove || canReject || canCancel);
    // Why a button is missing, in the policy's own words.
    const reasons = [];
    const open = request.state === "PENDING";
    if (open && extras && extras.refusals) {
      const held = extras.viewer_roles.length ? `You hold ${extras.viewer_roles.join(", ")}.` : "You hold no role.";
      for (const [action, allowed] of [["approve", canApprove], ["reject", canReject], ["cancel", canCancel]]) {
        const why = extras.refusals[action];
        if (allowed || !why) continue;
        const item = el("li", null, el("strong", null, `Why you cannot ${ACTION_WORDS[action]}: `), `${why}. `, el("span", "muted", held));
        item.id = `${action}-refusal`;
        reasons.push(item);
      }
    }
    $("refusals").replaceChildren(...reasons);
    show($("refusals"), reasons.length > 0);
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

  function activityItem(activity) {
    const word = ACTIVITY_WORDS[activity.activity_type] || activity.activity_type;
    const move =
      activity.to_stage !== undefined && activity.to_stage !== null
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
    if (FLAGGED.test(activity.system_comment || "")) {
      item.classList.add("flagged");
      item.prepend(el("span", "badge flag", "⚠ flagged"), " ");
    }
    return item;
  }

  function renderActivities(activities, request) {
    const mine = (Array.isArray(activities) ? activities : []).filter(
      (activity) => !activity.request_id || activity.request_id === request.id,
    );
    redraw($("activities"), mine, () => {
      const items = mine.map(activityItem);
      if (items.length === 0) items.push(el("li", "muted", "Nothing recorded yet."));
      return items;
    });
  }

  // -- the discussion ------------------------------------------------------------------------

  function renderComments(comments) {
    redraw($("comments"), comments, () => commentItems(comments));
  }

  function commentItems(comments) {
    const items = comments.map((comment) => {
      const actions = new Set(Array.isArray(comment.available_actions) ? comment.available_actions : []);
      const text = el("p", "comment", comment.comment);
      const edited = comment.last_updated_timestamp > comment.creation_timestamp ? " (edited)" : "";
      const buttons = el("div", "buttons");
      const item = el(
        "li",
        "comment-item",
        el("strong", null, comment.user_id),
        el("span", "muted", ` ${when(comment.creation_timestamp)}${edited}`),
        text,
        buttons,
      );
      item.dataset.commentId = String(comment.id);
      if (actions.has("EDIT_COMMENT")) {
        const edit = el("button", "edit-comment", "Edit");
        edit.type = "button";
        edit.addEventListener("click", () => editComment(item, comment));
        buttons.append(edit);
      }
      if (actions.has("DELETE_COMMENT")) {
        const remove = el("button", "delete-comment", "Delete");
        remove.type = "button";
        remove.addEventListener("click", () => commentAction(() =>
          api("DELETE", "/mlflow/comments/delete", { query: { id: comment.id } }), "Comment deleted."));
        buttons.append(remove);
      }
      return item;
    });
    if (items.length === 0) items.push(el("li", "muted", "No comments yet."));
    return items;
  }

  function editComment(item, comment) {
    editing = true;
    const box = el("textarea", "edit-text");
    box.value = comment.comment;
    box.rows = 3;
    box.maxLength = 10000;
    box.setAttribute("aria-label", "Edit your comment");
    const save = el("button", "primary save-comment", "Save");
    save.type = "button";
    const back = el("button", null, "Cancel");
    back.type = "button";
    item.replaceChildren(box, el("div", "buttons", save, back));
    box.focus();
    save.addEventListener("click", () => commentAction(() =>
      api("PATCH", "/mlflow/comments/update", { body: { id: comment.id, comment: box.value } }), "Comment saved."));
    back.addEventListener("click", () => {
      editing = false;
      forget($("comments"));
      loadComments(current);
    });
  }

  async function commentAction(call, done) {
    clearMessage();
    try {
      await call();
      showMessage(done, "info");
    } catch (err) {
      report(err);
    }
    editing = false;
    forget($("comments"));
    if (current) await loadComments(current).catch(report);
  }

  let commentLoads = 0; // only the latest load draws: an older answer may arrive after it

  async function loadComments(request) {
    const mine = ++commentLoads;
    const data = await api("GET", "/signoff/comments/list", {
      query: { name: request.name, version: request.version },
    });
    if (!editing && mine === commentLoads) {
      renderComments(Array.isArray(data.comments) ? data.comments : []);
    }
  }

  async function postComment(event) {
    event.preventDefault();
    if (!current) return;
    const text = $("comment-text").value;
    if (!text.trim()) return;
    await commentAction(async () => {
      await api("POST", "/mlflow/comments/create", {
        body: { name: current.name, version: String(current.version), comment: text },
      });
      $("comment-text").value = "";
    }, "Comment posted.");
  }

  async function loadRequest(id) {
    const [data, more] = await Promise.all([
      api("GET", "/signoff/transition-requests/get", { query: { id } }),
      api("GET", `/requests/${encodeURIComponent(id)}`, { base: "/ui/api" }),
    ]);
    const request = data.request;
    current = request;
    extras = more;
    $("post-comment").disabled = false; // the thread can take comments once the request is known
    renderDetails(request);
    renderExtras(request);
    renderDigest(request);
    renderChecks(request.checks);
    renderApprovals(request);
    renderActions(request);
    show($("request-view"), true);
    try {
      const [trail] = await Promise.all([
        api("GET", "/signoff/activities/list", { query: { name: request.name, version: request.version } }),
        loadComments(request),
      ]);
      renderActivities(trail.activities, request);
    } catch (err) {
      if (err instanceof AuthRequired) throw err;
      // The version may be gone from MLflow; the request itself is still worth showing.
      forget($("activities"));
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

  function askToConfirm(id) {
    stopRefresh();
    busy = true;
    $("confirm-text").textContent = extras.confirmation;
    show($("confirm"), true);
    $("confirm-yes").focus();
  }

  function closeConfirm() {
    show($("confirm"), false);
    busy = false;
  }

  async function decide(id, action) {
    if (!current || busy) return;
    busy = true;
    stopRefresh();
    clearMessage();
    const buttons = [$("approve"), $("reject"), $("cancel"), $("confirm-yes")];
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
      show($("confirm"), false);
      busy = false;
    }
    if (signedIn()) refreshRequest(id);
  }

  function attachRequestView(id) {
    document.title = "Request · Signoff";
    $("approve").addEventListener("click", () => {
      if (extras && extras.confirmation) askToConfirm(id);
      else decide(id, "approve");
    });
    $("confirm-yes").addEventListener("click", () => {
      busy = false;
      decide(id, "approve");
    });
    $("confirm-no").addEventListener("click", () => {
      closeConfirm();
      $("approve").focus();
      refreshRequest(id);
    });
    $("reject").addEventListener("click", () => decide(id, "reject"));
    $("cancel").addEventListener("click", () => decide(id, "cancel"));
    $("comment-form").addEventListener("submit", postComment);
  }

  // -- one model ----------------------------------------------------------------------------

  async function loadModel(name) {
    const data = await api("GET", `/models/${encodeURIComponent(name)}`, { base: "/ui/api" });
    document.title = `${data.name} · Signoff`;
    $("model-title").replaceChildren(el("span", "model", data.name));
    $("mlflow-model-link").href = data.mlflow_model_url;
    const rows = data.versions.map((version) => {
      const open = version.open_requests.map((id) => link(`/ui/requests/${encodeURIComponent(id)}`, "open request"));
      const tr = el(
        "tr",
        null,
        cell("Version", null, version.version),
        cell("Stage", null, version.stage),
        cell("Aliases", null, version.aliases.length ? version.aliases.map((a) => `@${a}`).join(", ") : "—"),
        cell("Open requests", null, ...(open.length ? open : ["—"])),
      );
      tr.dataset.version = version.version;
      return tr;
    });
    redraw($("versions-body"), data.versions, () => rows);
    const numbers = data.versions.map((v) => v.version);
    redraw($("request-version"), numbers, () => numbers.map((v) => el("option", null, v)));
    redraw($("request-target"), data.targets, () => data.targets.map((t) => el("option", null, t)));
    show($("request-form"), data.can_request && data.versions.length > 0 && data.targets.length > 0);
    const requests = data.open_requests.map((row) => {
      const item = el(
        "li",
        null,
        link(`/ui/requests/${encodeURIComponent(row.id)}`, `version ${row.version}: ${stage(row.from_stage)} → ${stage(row.to_stage)}`),
        ` by ${row.user_id}, ${ago(row.creation_timestamp)} · ${row.approvals}/${row.quorum} approvals · checks ${checksSummary(row.checks)}`,
      );
      item.dataset.requestId = row.id;
      return item;
    });
    if (requests.length === 0) requests.push(el("li", "muted", "No open requests."));
    redraw($("model-requests"), data.open_requests, () => requests);
    const activities = data.activities.map(activityItem);
    if (activities.length === 0) activities.push(el("li", "muted", "Nothing recorded yet."));
    redraw($("model-activities"), data.activities, () => activities);
    show($("model-view"), true);
  }

  async function refreshModel(name) {
    try {
      await loadModel(name);
    } catch (err) {
      report(err);
      return;
    }
    scheduleRefresh(() => refreshModel(name), REFRESH_MS * 4);
  }

  function attachModelView(name) {
    $("request-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      clearMessage();
      try {
        const created = await api("POST", "/mlflow/transition-requests/create", {
          body: {
            name,
            version: $("request-version").value,
            stage: $("request-target").value,
            comment: $("request-comment").value.trim() || undefined,
          },
        });
        const id = created && created.request && created.request.id;
        if (id) window.location.assign(`/ui/requests/${encodeURIComponent(id)}`);
        else refreshModel(name);
      } catch (err) {
        report(err);
      }
    });
  }

  // -- routing and start --------------------------------------------------------------------

  let started = false;

  /** Show the view the address names, for whoever is signed in now. Run at start and after
   *  every sign-in without a reload: the view is shown again each time (listeners are attached
   *  once only). */
  function badLink(reason) {
    document.title = "Not found · Signoff";
    $("bad-link-reason").textContent = reason;
    show($("bad-link"), true);
  }

  function route() {
    show($("login"), false);
    showIdentity();
    const path = window.location.pathname;
    const requestMatch = path.match(/^\/ui\/requests\/([^/]*)\/?$/);
    const modelMatch = path.match(/^\/ui\/models\/([^/]+)\/?$/);
    let view;
    try {
      view = requestMatch
        ? { kind: "request", id: decodeURIComponent(requestMatch[1]) }
        : modelMatch
          ? { kind: "model", name: decodeURIComponent(modelMatch[1]) }
          : { kind: "list" };
    } catch {
      view = { kind: "bad" };
    }
    if (view.kind === "request" && !REQUEST_ID.test(view.id)) view = { kind: "bad" };
    if (!started) {
      started = true;
      if (view.kind === "request") attachRequestView(view.id);
      else if (view.kind === "model") attachModelView(view.name);
      else if (view.kind === "list") attachListView();
    }
    if (view.kind === "bad") {
      badLink("This address does not name a transition request (request ids are hexadecimal).");
    } else if (view.kind === "request") {
      show($("request-view"), true);
      refreshRequest(view.id);
    } else if (view.kind === "model") {
      show($("model-view"), true);
      refreshModel(view.name);
    } else {
      document.title = "Inbox · Signoff";
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
    let provider = null;
    try {
      const answer = await fetch("/ui/auth/logout", {
        method: "POST",
        credentials: "same-origin",
        headers: { [CSRF_HEADER]: (session && session.csrf_token) || "", Accept: "application/json" },
      });
      const body = answer.ok ? await answer.json() : null;
      provider = body && typeof body.end_session_url === "string" ? body.end_session_url : null;
    } catch {
      // Signed out locally either way; the session also ends by itself.
    }
    if (provider && /^https?:\/\//.test(provider)) {
      // Signed out at the identity provider too; it sends the browser back to /ui/signed-out.
      window.location.assign(provider);
      return;
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
    const back = window.location.pathname === "/ui/signed-out";
    if (back) window.history.replaceState(null, "", "/ui/");
    if (signedIn()) route();
    else askToSignIn(back ? "Signed out." : "");
  }

  document.addEventListener("DOMContentLoaded", start);
})();
