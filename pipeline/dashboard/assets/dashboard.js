// The live page: draws the view the server embedded, then replaces it with each view the server
// sends (Server-Sent Events; a reconnect sends the last event id and resumes there). Values are
// only ever put in the page with textContent: nothing from Kafka becomes markup.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  let view = JSON.parse($("initial").textContent);
  let received = Date.now();
  let plot = null;
  let shownLabels = "";
  const palette = ["#4c78c8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac", "#eeca3b"];
  const utc = (ms) => new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "");
  const ago = (ms) => {
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  };
  function fill(tbody, items, cells) {
    tbody.replaceChildren(...items.map((item) => {
      const tr = document.createElement("tr");
      for (const c of cells(item)) {
        const td = document.createElement("td");
        td.textContent = String(c);
        tr.appendChild(td);
      }
      return tr;
    }));
  }
  function list(ul, items, text) {
    ul.replaceChildren(...items.map((item) => {
      const li = document.createElement("li");
      li.textContent = text(item);
      return li;
    }));
  }
  function behind() {
    $("behind").textContent = view.behind_ms == null ? "—" : ago(view.behind_ms + (Date.now() - received));
  }
  function draw() {
    const names = [...view.companies, "others", "total"];
    const data = [view.minutes.map((m) => m / 1000), ...view.series, view.others, view.total];
    // The chart's data, readable in the page (and by the browser tests).
    const series = {};
    names.forEach((n, i) => { series[n] = data[i + 1]; });
    $("chart-data").textContent = JSON.stringify({ minutes: view.minutes, series: series });
    const labels = names.join("\u0000");
    if (plot && labels === shownLabels) {
      plot.setData(data);
    } else if (typeof uPlot !== "undefined") {
      if (plot) plot.destroy();
      const width = Math.max(480, Math.min(1200, document.body.clientWidth - 20));
      plot = new uPlot({
        width: width,
        height: 320,
        // The windows' own span and a minute either side (uPlot widens a single point's range
        // to years before it asks): one window is a point in the middle.
        scales: { x: { time: true, range: (u) => {
          const xs = u.data[0];
          return xs.length ? [xs[0] - 60, xs[xs.length - 1] + 60] : [0, 1];
        } } },
        axes: [{}, { label: "chunks per minute" }],
        series: [{ label: "window start (UTC)", value: (u, v) => (v == null ? "—" : utc(v * 1000)) }].concat(names.map((n, i) => ({
          label: n,
          stroke: n === "total" ? "#1d2430" : n === "others" ? "#9aa3b0" : palette[i % palette.length],
          width: n === "total" ? 2.2 : 1.4,
          dash: n === "total" ? [6, 3] : undefined,
          points: { show: view.minutes.length < 90 },
        }))),
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      }, data, $("chart"));
      shownLabels = labels;
    }
    $("windows").textContent = String(view.windows);
    $("companies").textContent = String(view.companies_in_history);
    fill($("latest").tBodies[0], view.latest, (w) => [w.company_id, utc(w.start), utc(w.end), w.count]);
    const reasons = Object.entries(view.late_by_reason);
    $("late-total").textContent = String(reasons.reduce((a, [, n]) => a + n, 0));
    list($("late-reasons"), reasons, ([r, n]) => r + ": " + n);
    fill($("latest-late").tBodies[0], view.latest_late, (l) => [l.reason, l.company_id, l.chunk_id, utc(l.ts)]);
    $("malformed").textContent = String(view.malformed);
    list($("latest-malformed"), view.latest_malformed, (m) =>
      (m.position.topic === "w" ? "analytics.flink" : "analytics.late") + "[" + m.position.partition + "]@" + m.position.offset + ": " + m.reason);
    document.body.dataset.cursor = view.cursor;
    behind();
  }
  function state(text, cls) {
    const b = $("connection");
    b.textContent = text;
    b.className = cls;
  }
  draw();
  setInterval(behind, 1000);
  const events = new EventSource("/events?last=" + encodeURIComponent(view.cursor));
  events.addEventListener("view", (e) => {
    view = JSON.parse(e.data);
    received = Date.now();
    draw();
  });
  events.onopen = () => state("live", "live");
  events.onerror = () => state(events.readyState === EventSource.CLOSED ? "closed" : "reconnecting…", "down");
})();
