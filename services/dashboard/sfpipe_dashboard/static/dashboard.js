/* sfpipe dashboard: fetches /api/dashboard and draws every panel; redraws on a timer.
   Charts are Plotly.js (served from the plotly Python package, no network needed). */
(function () {
  "use strict";

  var body = document.body;
  var API = body.getAttribute("data-api");
  var REFRESH_MS = Math.max(2, parseFloat(body.getAttribute("data-refresh-seconds")) || 10) * 1000;

  var css = getComputedStyle(document.documentElement);
  function v(name) { return css.getPropertyValue(name).trim(); }
  var C = {
    ok: v("--ok"), failed: v("--failed"), running: v("--running"), skipped: v("--skipped"), warning: v("--warning"),
    ink: v("--ink"), ink2: v("--ink-2"), ink3: v("--ink-3"), line: v("--line"), accent: v("--accent"), font: v("--font"),
  };
  var STATUS_LABEL = { ok: "succeeded", failed: "failed", running: "running", skipped: "other" };
  var PLOT_CONFIG = { displayModeBar: false, responsive: true };

  // ---- formatting ------------------------------------------------------------------------
  var nf = new Intl.NumberFormat("en-US");
  var money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", notation: "compact", maximumFractionDigits: 1 });
  var moneyFull = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD", maximumFractionDigits: 0 });
  function num(x) { return x === null || x === undefined ? "—" : nf.format(Math.round(x)); }
  function cash(x) { return x === null || x === undefined ? "—" : money.format(x); }
  function pct(x, digits) { return x === null || x === undefined ? "—" : x.toFixed(digits === undefined ? 0 : digits) + "%"; }
  function dur(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return Math.round(seconds * 1000) + " ms";
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    var m = Math.floor(seconds / 60), s = Math.round(seconds % 60);
    if (m < 60) return m + "m " + (s < 10 ? "0" : "") + s + "s";
    var h = Math.floor(m / 60);
    return h + "h " + (m % 60) + "m";
  }
  function ago(seconds) {
    if (seconds === null || seconds === undefined) return "never";
    if (seconds < 0) seconds = 0;
    if (seconds < 60) return Math.round(seconds) + " s ago";
    if (seconds < 3600) return Math.round(seconds / 60) + " min ago";
    if (seconds < 86400 * 2) return Math.round(seconds / 3600) + " h ago";
    return Math.round(seconds / 86400) + " days ago";
  }
  function ms(x) { return x === null || x === undefined ? "—" : (x >= 1000 ? (x / 1000).toFixed(2) + " s" : Math.round(x) + " ms"); }
  function clock(iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }
  function esc(text) {
    return String(text === null || text === undefined ? "" : text)
      .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function rich(text) { return esc(text).replace(/`([^`]+)`/g, "<code>$1</code>"); }
  function $(id) { return document.getElementById(id); }

  // ---- panel state -----------------------------------------------------------------------
  var EMPTY_TITLE = {
    runs: "No runs yet", freshness: "No raw tables yet", quality: "No quality results yet",
    dead_letters: "Backlog unavailable", pipeline_by_stage: "No open pipeline yet", bookings_by_month: "No bookings yet",
    win_by_owner: "No owner results yet", cdc_lag: "No change events yet", reconciliation: "No reconciliation yet",
  };
  function setState(name, panel, chartIds) {
    var card = $("panel-" + name);
    if (!card) return false;
    card.setAttribute("data-state", panel.state);
    if (panel.state !== "ok") {
      var error = panel.state === "error";
      card.querySelector(".empty").innerHTML =
        '<div class="glyph">' + (error ? "!" : "○") + "</div>" +
        '<div class="what">' + esc(error ? "Could not read this panel" : EMPTY_TITLE[name] || "Nothing yet") + "</div>" +
        '<div class="msg">' + rich(panel.message || "") + "</div>";
      (chartIds || []).forEach(function (id) { var el = $(id); if (el && el.data) Plotly.purge(el); });
      return false;
    }
    return true;
  }

  function baseLayout(extra) {
    var layout = {
      margin: { l: 8, r: 12, t: 6, b: 28 },
      paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
      font: { family: C.font, size: 11, color: C.ink2 },
      showlegend: false,
      hoverlabel: { bgcolor: "#fff", bordercolor: C.line, font: { family: C.font, size: 12, color: C.ink } },
      xaxis: { gridcolor: C.line, zeroline: false, linecolor: C.line, tickfont: { color: C.ink3 }, automargin: true },
      yaxis: { gridcolor: C.line, zeroline: false, linecolor: C.line, tickfont: { color: C.ink2 }, automargin: true },
      bargap: 0.28,
    };
    for (var k in extra) {
      if (typeof extra[k] === "object" && extra[k] !== null && !Array.isArray(extra[k]) && layout[k]) {
        for (var j in extra[k]) layout[k][j] = extra[k][j];
      } else {
        layout[k] = extra[k];
      }
    }
    return layout;
  }
  function draw(id, traces, layout) { Plotly.react($(id), traces, layout, PLOT_CONFIG); }

  // ---- header, issues, KPIs --------------------------------------------------------------
  var HEALTH_LABEL = {
    healthy: "Healthy", running: "Run in progress", attention: "Needs attention", failing: "Failing",
    "no-data": "Waiting for the first run", offline: "Dashboard API unreachable",
  };
  function kpi(id, value, sub, tone) {
    var el = $(id);
    el.querySelector(".kpi-value").textContent = value;
    el.querySelector(".kpi-sub").textContent = sub || "";
    if (tone) el.setAttribute("data-tone", tone); else el.removeAttribute("data-tone");
  }
  function renderHeader(d) {
    var h = d.health;
    var el = $("health");
    el.setAttribute("data-status", h.status);
    el.querySelector(".label").textContent = HEALTH_LABEL[h.status] || h.status;
    $("updated").textContent = "Updated " + new Date(d.generated_at).toLocaleTimeString();
    var issues = $("issues");
    if (h.issues.length) {
      issues.hidden = false;
      issues.className = "issues" + (h.status === "failing" ? " failing" : "");
      issues.innerHTML = h.issues.map(function (t) { return "<span>" + esc(t) + "</span>"; }).join("");
    } else {
      issues.hidden = true;
      issues.innerHTML = "";
    }

    var run = h.last_run;
    if (run) {
      kpi("kpi-run", STATUS_LABEL[run.status_class] ? cap(STATUS_LABEL[run.status_class]) : run.status_class,
        dur(run.seconds) + " · started " + agoIso(run.started_at, d.generated_at), run.status_class === "skipped" ? null : run.status_class);
    } else {
      kpi("kpi-run", "None yet", "run `sfpipe demo`".replace(/`/g, ""), null);
    }
    var q = h.quality;
    if (q) {
      kpi("kpi-quality", q.passed + " / " + q.suites + " passing",
        q.failing_expectations ? q.failing_expectations + " failing expectation" + (q.failing_expectations === 1 ? "" : "s") : "every expectation met",
        q.passed === q.suites ? "ok" : (qualityHasErrors(d) ? "failed" : "warning"));
    } else {
      kpi("kpi-quality", "—", "no results yet", null);
    }
    if (h.dead_letters === null || h.dead_letters === undefined) {
      kpi("kpi-dead", "—", "Pub/Sub not reachable", null);
    } else {
      var dl = d.panels.dead_letters.data;
      kpi("kpi-dead", num(h.dead_letters), num(dl.dead_letter) + " dead-lettered · " + num(dl.alerts) + " alerts",
        h.dead_letters ? "failed" : "ok");
    }
    kpi("kpi-rows", h.objects ? num(h.rows) : "—",
      h.objects ? h.objects + " objects" + (h.stale_objects ? " · " + h.stale_objects + " stale" : " · all fresh") : "nothing loaded yet",
      null);

    var snap = d.panels.snapshot;
    if (snap.state === "ok") {
      var s = snap.data;
      kpi("kpi-bookings", cash(s.total_bookings_amount), num(s.total_number_bookings) + " deals won · avg " + cash(s.avg_bookings_amount), null);
      kpi("kpi-quarter", cash(s.bookings_amount_closed_this_quarter), cash(s.bookings_amount_closed_this_month) + " this month", null);
      kpi("kpi-pipeline", cash(s.total_pipeline_amount), num(s.total_number_pipeline) + " open deals", null);
      kpi("kpi-win", pct(s.total_win_percent, 1), num(s.total_number_bookings) + " won · " + num(s.total_number_lost) + " lost", null);
    } else {
      ["kpi-bookings", "kpi-quarter", "kpi-pipeline", "kpi-win"].forEach(function (id) { kpi(id, "—", "marts not built yet", null); });
    }
  }
  function agoIso(iso, nowIso) { return iso ? ago((Date.parse(nowIso) - Date.parse(iso)) / 1000) : "—"; }
  function cap(s) { return s.charAt(0).toUpperCase() + s.slice(1); }
  function qualityHasErrors(d) {
    var p = d.panels.quality;
    return p.state === "ok" && p.data.suites.some(function (s) { return s.status === "failed"; });
  }

  // ---- runs timeline ---------------------------------------------------------------------
  function renderRuns(panel) {
    if (!setState("runs", panel, ["chart-runs"])) { $("runs-legend").innerHTML = ""; return; }
    var runs = panel.data.runs;
    var labels = runs.map(function (r) { return clock(r.started_at) + " · " + r.run_id.split("-").pop(); });
    var byStatus = {};
    var maxEnd = 0;
    runs.forEach(function (run, i) {
      var t0 = run.started_at ? Date.parse(run.started_at) : null;
      // stages that run at the same time (transform next to reconcile) get lanes of their own
      var placed = [];
      var laneEnds = [];
      run.stages.forEach(function (st) {
        if (!st.started_at || t0 === null) return;
        var start = (Date.parse(st.started_at) - t0) / 1000;
        var length = Math.max(st.seconds || 0, 0.4);
        var lane = 0;
        while (lane < laneEnds.length && laneEnds[lane] > start + 0.05) lane++;
        laneEnds[lane] = start + length;
        placed.push({ st: st, start: start, length: length, lane: lane });
      });
      // the main lane keeps the whole bar (its labels stay readable); a stage running next to
      // another gets a thin bar in the gap under its row
      var side = 0.1;
      var main = 0.7;
      placed.forEach(function (p) {
        var st = p.st;
        maxEnd = Math.max(maxEnd, p.start + p.length);
        var key = st.status_class;
        var t = byStatus[key] || (byStatus[key] = { x: [], base: [], y: [], text: [], customdata: [], offset: [], width: [] });
        t.x.push(p.length); t.base.push(p.start); t.y.push(labels[i]); t.text.push(p.lane === 0 ? st.stage : "");
        var w = p.lane === 0 ? main : side;
        t.width.push(w); t.offset.push(p.lane === 0 ? -0.35 : -0.35 - p.lane * (side + 0.02));
        t.customdata.push([st.stage, st.status, dur(st.seconds), num(st.rows), clock(st.started_at), run.run_id]);
      });
    });
    var order = ["ok", "running", "failed", "skipped"];
    var traces = order.filter(function (k) { return byStatus[k]; }).map(function (k) {
      var t = byStatus[k];
      return {
        type: "bar", orientation: "h", name: STATUS_LABEL[k], x: t.x, base: t.base, y: t.y, text: t.text, customdata: t.customdata,
        offset: t.offset, width: t.width,
        marker: { color: C[k], line: { color: "#fff", width: 1.5 }, pattern: k === "running" ? { shape: "/", fgcolor: "rgba(255,255,255,.45)", size: 6 } : undefined },
        textposition: "inside", insidetextanchor: "middle", textfont: { color: "#fff", size: 10 }, cliponaxis: false,
        hovertemplate: "<b>%{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]} · %{customdata[3]} rows<br>started %{customdata[4]}<br><span style='color:#8591a3'>%{customdata[5]}</span><extra></extra>",
      };
    });
    traces.push({
      type: "scatter", mode: "text", hoverinfo: "skip",
      x: runs.map(function (r) { return (r.seconds || 0) + maxEnd * 0.015; }), y: labels,
      text: runs.map(function (r) { return dur(r.seconds) + (r.failed_stage ? " · failed at " + r.failed_stage : ""); }),
      textposition: "middle right", textfont: { size: 10.5, color: C.ink3 },
    });
    draw("chart-runs", traces, baseLayout({
      barmode: "overlay", uniformtext: { mode: "hide", minsize: 8 }, bargap: 0.3,
      margin: { l: 8, r: 16, t: 4, b: 30 },
      xaxis: { title: { text: "seconds since the run started", font: { size: 10.5, color: C.ink3 }, standoff: 4 }, range: [0, maxEnd * 1.22], ticksuffix: " s" },
      yaxis: { type: "category", categoryorder: "array", categoryarray: labels.slice().reverse(), gridcolor: "rgba(0,0,0,0)", tickfont: { family: C.font, size: 11, color: C.ink2 } },
    }));
    $("runs-legend").innerHTML = order.filter(function (k) { return byStatus[k]; }).map(function (k) {
      return '<span><i style="background:' + C[k] + '"></i>' + STATUS_LABEL[k] + "</span>";
    }).join("");
  }

  // ---- quality ---------------------------------------------------------------------------
  var SUITE_BADGE = { passed: ["ok", "✓ passed"], warning: ["warning", "▲ warning"], failed: ["failed", "✕ failed"] };
  function renderQuality(panel) {
    if (!setState("quality", panel)) return;
    $("quality-list").innerHTML = panel.data.suites.map(function (s) {
      var badge = SUITE_BADGE[s.status];
      var share = s.total ? (s.passed / s.total) * 100 : 0;
      var failing = s.failing.slice(0, 4).map(function (f) {
        return '<li><span class="badge ' + (f.severity === "warning" || f.severity === "warn" ? "warning" : "failed") + '">' + esc(f.severity) + "</span>" +
          '<span class="exp" title="' + esc(f.expectation) + '">' + esc(f.check || f.expectation) + "</span>" +
          '<span class="obs where" title="' + esc([f.table, f.column].filter(Boolean).join(".")) + '">' + esc([f.table, f.column].filter(Boolean).join(".")) + "</span>" +
          '<span class="obs">' + esc(f.observed_value || "") + (f.unexpected_count ? " · " + num(f.unexpected_count) + " unexpected" : "") + "</span></li>";
      }).join("");
      var more = s.failing.length > 4 ? '<li><span></span><span class="obs">+' + (s.failing.length - 4) + " more</span></li>" : "";
      return '<div class="suite"><div class="suite-head"><span class="suite-name">' + esc(s.suite) + '</span><span class="suite-count">' +
        s.passed + "/" + s.total + '</span><span class="badge ' + badge[0] + '">' + badge[1] + "</span></div>" +
        '<div class="bar"><i style="width:' + share.toFixed(1) + '%"></i></div>' +
        (failing ? '<ul class="failing">' + failing + more + "</ul>" : "") + "</div>";
    }).join("");
  }

  // ---- dead letters ----------------------------------------------------------------------
  function renderDead(panel) {
    if (!setState("dead_letters", panel)) return;
    var d = panel.data;
    var html = '<div class="dl-total"><span class="n ' + (d.total ? "some" : "zero") + '">' + num(d.total) + "</span>" +
      '<span class="what">' + (d.total ? "message" + (d.total === 1 ? "" : "s") + " waiting" : "✓ nothing waiting") + "</span></div>";
    html += d.subscriptions.map(function (s) {
      var count = s.messages === null ? "?" : num(s.messages) + (s.capped ? "+" : "");
      var row = '<div class="sub-row"><span class="name" title="' + esc(s.error || s.subscription) + '">' + esc(s.subscription) + "</span>" +
        (s.kind === "dead-letter" ? '<span class="badge ' + (s.messages ? "failed" : "skipped") + '">dead letter</span>' : "") +
        '<span class="count ' + (s.messages ? "some" : "zero") + '">' + count + "</span></div>";
      var sources = Object.keys(s.by_source || {}).map(function (k) {
        return '<div class="sample">↳ ' + num(s.by_source[k]) + " given up by <code>" + esc(k) + "</code></div>";
      }).join("");
      var error = s.error ? '<div class="sample">' + esc(s.error) + "</div>" : "";
      return row + sources + error;
    }).join("");
    $("dead-list").innerHTML = html;
  }

  // ---- sales -----------------------------------------------------------------------------
  function renderStages(panel) {
    if (!setState("pipeline_by_stage", panel, ["chart-stages"])) return;
    var st = panel.data.stages;
    $("stages-hint").textContent = num(panel.data.open_count) + " open opportunities · " + cash(panel.data.open_amount);
    var n = st.length;
    var colors = st.map(function (_, i) { return "rgba(59,91,219," + (0.35 + 0.65 * (n > 1 ? i / (n - 1) : 1)).toFixed(2) + ")"; });
    draw("chart-stages", [{
      type: "bar", orientation: "h", y: st.map(function (s) { return s.stage_name; }), x: st.map(function (s) { return s.amount; }),
      marker: { color: colors }, text: st.map(function (s) { return cash(s.amount) + " · " + num(s.opportunities); }),
      textposition: "auto", textfont: { size: 10.5 }, cliponaxis: false,
      customdata: st.map(function (s) { return [num(s.opportunities), pct(s.probability)]; }),
      hovertemplate: "<b>%{y}</b><br>%{x:$,.0f}<br>%{customdata[0]} opportunities · %{customdata[1]} probability<extra></extra>",
    }], baseLayout({
      xaxis: { tickformat: "$~s", showgrid: true }, yaxis: { autorange: "reversed", gridcolor: "rgba(0,0,0,0)" },
    }));
  }

  function renderBookings(panel) {
    if (!setState("bookings_by_month", panel, ["chart-bookings"])) return;
    var m = panel.data.months;
    $("bookings-hint").textContent = cash(panel.data.total) + " won over " + m.length + " month" + (m.length === 1 ? "" : "s");
    var last = m.length - 1;
    draw("chart-bookings", [{
      type: "bar", x: m.map(function (r) { return r.month; }), y: m.map(function (r) { return r.amount; }),
      marker: { color: m.map(function (_, i) { return i === last ? "#0c8f6a" : "#12b886"; }) },
      customdata: m.map(function (r) { return num(r.deals); }),
      hovertemplate: "<b>%{x|%B %Y}</b><br>%{y:$,.0f}<br>%{customdata} deals won<extra></extra>",
    }], baseLayout({
      xaxis: { type: "date", tickformat: "%b\n%Y", dtick: "M3", showgrid: false }, yaxis: { tickformat: "$~s" }, bargap: 0.18,
      margin: { l: 8, r: 12, t: 6, b: 36 },
    }));
  }

  function renderOwners(panel, snapshot) {
    if (!setState("win_by_owner", panel, ["chart-owners"])) return;
    var o = panel.data.owners;
    var team = snapshot && snapshot.state === "ok" ? snapshot.data.total_win_percent : null;
    var shapes = [], annotations = [];
    if (team !== null && team !== undefined) {
      shapes.push({ type: "line", x0: team, x1: team, y0: 0, y1: 1, yref: "paper", line: { color: C.ink3, width: 1, dash: "dot" } });
      annotations.push({ x: team, y: 1, yref: "paper", yanchor: "bottom", text: "team " + pct(team), showarrow: false, font: { size: 10, color: C.ink3 } });
    }
    draw("chart-owners", [{
      type: "bar", orientation: "h", y: o.map(function (r) { return r.owner_name; }), x: o.map(function (r) { return r.win_percent; }),
      marker: { color: o.map(function (r) { return team !== null && r.win_percent < team ? "#f0b429" : "#3b5bdb"; }) },
      text: o.map(function (r) { return pct(r.win_percent); }), textposition: "outside", cliponaxis: false,
      textfont: { size: 10, color: C.ink2 },
      customdata: o.map(function (r) { return [cash(r.bookings), cash(r.lost)]; }),
      hovertemplate: "<b>%{y}</b><br>%{x:.1f}% won<br>%{customdata[0]} won · %{customdata[1]} lost<extra></extra>",
    }], baseLayout({
      xaxis: { range: [0, 100], ticksuffix: "%" }, yaxis: { autorange: "reversed", gridcolor: "rgba(0,0,0,0)" },
      shapes: shapes, annotations: annotations, margin: { l: 8, r: 12, t: 14, b: 28 }, bargap: 0.22,
      uniformtext: { mode: "hide", minsize: 8 },
    }));
  }

  // ---- freshness -------------------------------------------------------------------------
  function renderFreshness(panel) {
    if (!setState("freshness", panel)) return;
    var rows = panel.data.objects.map(function (o) {
      var label = { ok: "fresh", stale: "stale", failed: "load failed" }[o.health] || o.health;
      return "<tr><td class=\"obj\"><span class=\"dot-s " + esc(o.health) + "\"></span>" + esc(o.object) + "</td>" +
        '<td class="num">' + num(o.rows) + "</td>" +
        '<td class="num muted">' + (o.deleted ? num(o.deleted) : "–") + "</td>" +
        "<td>" + ago(o.modstamp_age_seconds) + "</td>" +
        "<td>" + ago(o.last_load_age_seconds) + "</td>" +
        '<td><span class="badge ' + (o.health === "ok" ? "ok" : o.health === "failed" ? "failed" : "stale") + '" title="' + esc(o.last_load_error || o.last_load_status || "") + '">' + esc(label) + "</span></td></tr>";
    }).join("");
    $("freshness-table").innerHTML = "<table><thead><tr><th>Object</th><th class=\"num\">Rows</th><th class=\"num\">Deleted</th>" +
      "<th>Newest change</th><th>Last load</th><th>State</th></tr></thead><tbody>" + rows + "</tbody></table>";
  }

  // ---- CDC lag ---------------------------------------------------------------------------
  function renderCdc(panel) {
    if (!setState("cdc_lag", panel, ["chart-cdc"])) return;
    var d = panel.data;
    $("cdc-hint").textContent = "p50 " + ms(d.p50_ms) + " · p99 " + ms(d.p99_ms) + " · " + num(d.changes) + " changes";
    var x = d.series.map(function (p) { return p.at; });
    draw("chart-cdc", [
      { type: "scatter", mode: "lines", name: "p99", x: x, y: d.series.map(function (p) { return p.p99_ms; }),
        line: { color: C.failed, width: 1.5, shape: "spline" }, fill: "none", hovertemplate: "p99 %{y:,.0f} ms<extra></extra>" },
      { type: "scatter", mode: "lines", name: "p50", x: x, y: d.series.map(function (p) { return p.p50_ms; }),
        line: { color: C.running, width: 2, shape: "spline" }, fill: "tozeroy", fillcolor: "rgba(0,114,178,0.08)", hovertemplate: "p50 %{y:,.0f} ms<extra></extra>" },
    ], baseLayout({
      showlegend: true, legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", font: { size: 10.5 } },
      hovermode: "x unified", margin: { l: 8, r: 10, t: 18, b: 28 },
      xaxis: { type: "date", tickformat: "%H:%M", showgrid: false }, yaxis: { ticksuffix: " ms", rangemode: "tozero" },
    }));
  }

  // ---- reconciliation --------------------------------------------------------------------
  function renderRecon(panel) {
    if (!setState("reconciliation", panel)) return;
    var d = panel.data;
    var total = d.objects.length;
    var ok = d.objects.filter(function (o) { return o.status_class === "ok"; }).length;
    var repaired = d.objects.reduce(function (n, o) { return n + (o.repaired || 0); }, 0);
    $("recon-hint").textContent = "checked " + clock(d.checked_at);
    var rows = d.objects.map(function (o) {
      return '<tr><td class="obj"><span class="dot-s ' + (o.status_class === "ok" ? "ok" : "failed") + '"></span>' + esc(o.object) + "</td>" +
        '<td class="num">' + num(o.source_rows) + "</td>" +
        '<td class="num ' + (o.differences ? "" : "muted") + '">' + (o.differences ? num(o.differences) : "0") + "</td>" +
        '<td class="num muted">' + (o.repaired ? num(o.repaired) : "–") + "</td></tr>";
    }).join("");
    $("recon-table").innerHTML = '<div class="recon-summary"><span class="n ' + (ok === total ? "ok" : "failed") + '">' + ok + "/" + total + "</span>" +
      "<span>objects match the source" + (d.differences ? " · " + num(d.differences) + " difference" + (d.differences === 1 ? "" : "s") +
        (repaired >= d.differences ? " repaired" : "") : "") + "</span></div>" +
      '<table><thead><tr><th>Object</th><th class="num">Rows</th><th class="num">Diff</th><th class="num">Fixed</th></tr></thead><tbody>' + rows + "</tbody></table>";
  }

  // ---- refresh loop ----------------------------------------------------------------------
  function render(d) {
    var p = d.panels;
    renderHeader(d);
    renderRuns(p.runs);
    renderQuality(p.quality);
    renderDead(p.dead_letters);
    renderStages(p.pipeline_by_stage);
    renderBookings(p.bookings_by_month);
    renderOwners(p.win_by_owner, p.snapshot);
    renderFreshness(p.freshness);
    renderCdc(p.cdc_lag);
    renderRecon(p.reconciliation);
    body.setAttribute("data-rendered", d.generated_at);
  }

  var timer = null;
  function refresh() {
    clearTimeout(timer);
    if (document.hidden && body.hasAttribute("data-rendered")) { timer = setTimeout(refresh, REFRESH_MS); return; }
    fetch(API, { cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(render)
      .catch(function (err) {
        var el = $("health");
        el.setAttribute("data-status", "offline");
        el.querySelector(".label").textContent = HEALTH_LABEL.offline;
        el.title = String(err);
      })
      .then(function () { timer = setTimeout(refresh, REFRESH_MS); });
  }
  document.addEventListener("visibilitychange", function () { if (!document.hidden) refresh(); });
  refresh();
})();
