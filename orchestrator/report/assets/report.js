// The sweep report: draws the data of #report-data (orchestrator/report/report_data.h) into the
// page. Every piece of user data reaches the page through textContent or a property, never as
// markup. docs/report.md says what each panel shows.
(function () {
  'use strict';

  var config = JSON.parse(document.getElementById('report-config').textContent);
  var charts = [];
  var view = { sortKey: 'rank', sortUp: true, job: null, colourKey: null, heatX: null, heatY: null,
               page: 0 };
  var PAGE_ROWS = 100;  // leaderboard rows in the page at once (a 10,000-row table lays out slowly)
  var MARKS = { pruned: 'P', failed: 'F', diverged: 'D', lost: 'L', cancelled: 'C', running: 'R',
                pending: '\u00b7' };

  // --- small helpers ---------------------------------------------------------------------------
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === 'text') e.textContent = attrs[k];
        else if (k === 'className') e.className = attrs[k];
        else if (k === 'title') e.title = attrs[k];
        else e.setAttribute(k, attrs[k]);
      });
    }
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function fmt(v) {
    if (v === null || v === undefined || (typeof v === 'number' && !isFinite(v))) return '\u2013';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v) && Math.abs(v) < 1e7) return String(v);
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(2);
    return String(Number(v.toPrecision(4)));
  }
  function fmtCount(v) {
    if (v === null || v === undefined) return '\u2013';
    if (v >= 1e9) return (v / 1e9).toFixed(2) + 'G';
    if (v >= 1e6) return (v / 1e6).toFixed(2) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(1) + 'k';
    return String(v);
  }
  function fmtDuration(s) {
    if (!s) return '0s';
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    return (h ? h + 'h' : '') + (h || m ? m + 'm' : '') + r + 's';
  }
  // A job's parameters: the sweep's fixed ones and its own swept values.
  function allParams(data, job) { return Object.assign({}, data.fixed_params, job.params); }
  function paramText(p) {
    return Object.keys(p).map(function (k) { return k + '=' + JSON.stringify(p[k]); }).join(', ');
  }
  function sweptText(data, job) {
    return data.swept_keys.map(function (k) {
      return k + '=' + JSON.stringify(job.params[k]);
    }).join(' ');
  }
  function compareValues(a, b) {
    var an = a === null || a === undefined, bn = b === null || b === undefined;
    if (an || bn) return an === bn ? 0 : (an ? 1 : -1);
    if (typeof a === 'number' && typeof b === 'number') return a - b;
    return String(a) < String(b) ? -1 : (String(a) > String(b) ? 1 : 0);
  }
  function distinct(values) {
    var seen = {}, out = [];
    values.forEach(function (v) {
      var k = JSON.stringify(v);
      if (!(k in seen)) { seen[k] = true; out.push(v); }
    });
    return out.sort(compareValues);
  }
  function better(data, a, b) {
    return data.sweep.objective.mode === 'max' ? a > b : a < b;
  }
  function byRank(data) {
    return data.jobs.slice().sort(function (a, b) {
      return compareValues(a.rank, b.rank) || a.id - b.id;
    });
  }

  // --- summary ---------------------------------------------------------------------------------
  function renderSummary(data) {
    var s = data.summary, body = clear(document.getElementById('summary-body'));
    var cards = el('div', { className: 'cards' });
    function card(label, value) { cards.appendChild(el('div', { className: 'card' }, [
      el('b', { text: value }), el('span', { text: label })])); }
    card('jobs', String(s.jobs));
    Object.keys(s.states).forEach(function (k) { card(k, String(s.states[k])); });
    card('wall time', fmtDuration(s.wall_s));
    card('job time (sum)', fmtDuration(s.job_s));
    card('steps trained', fmtCount(s.compute.steps));
    card('tokens trained', fmtCount(s.compute.tokens));
    if (s.compute.pruned) card('tokens saved by pruning', fmtCount(s.compute.saved_tokens));
    var best = byRank(data)[0];
    if (best && best.rank) {
      card('best ' + data.sweep.objective.metric + ' (job ' + best.hash.slice(0, 8) + ')',
           fmt(best.objective));
      card('base model (step 0)', fmt(best.base_objective));
      card('gain over the base', fmt(best.gain));
    }
    var notLearning = data.jobs.filter(function (j) { return j.not_learning; }).length;
    if (notLearning) card('not learning (learning check failed)', String(notLearning));
    body.appendChild(cards);
    if (s.failures.length) {
      body.appendChild(el('h3', { text: 'Failures (' + s.failures.length + ')' }));
      var t = el('table', { id: 'failures-table' });
      t.appendChild(el('thead', null, [el('tr', null, ['job', 'state', 'exit code', 'first error line']
        .map(function (h) { return el('th', { text: h }); }))]));
      var tb = el('tbody');
      s.failures.forEach(function (f) {
        var tr = el('tr', null, [el('td', { text: f.hash.slice(0, 8) }),
          el('td', { text: f.state, className: 'state-' + f.state }),
          el('td', { text: fmt(f.exit_code), className: 'num' }), el('td', { text: f.error })]);
        tr.addEventListener('click', function () { showJob(data, f.job); });
        tb.appendChild(tr);
      });
      t.appendChild(tb);
      body.appendChild(el('div', { className: 'table-wrap short' }, [t]));
    }
  }

  // --- curves ----------------------------------------------------------------------------------
  function colourer(data, key) {
    var values = distinct(data.jobs.map(function (j) { return j.params[key]; }));
    return function (job) {
      var i = values.findIndex(function (v) { return JSON.stringify(v) === JSON.stringify(job.params[key]); });
      var t = values.length > 1 ? i / (values.length - 1) : 0;
      return 'hsl(' + Math.round(250 - 250 * t) + ',70%,' + (values.length > 1 ? 45 : 40) + '%)';
    };
  }
  function metricsOf(data) { return ['train_loss'].concat(data.eval_metrics); }
  function axisTitle(data) { return data.axis === 'tokens' ? 'training tokens seen' : 'step'; }

  function lineChart(canvas, data, datasets, metric, logScale) {
    return new Chart(canvas, {
      type: 'line',
      data: { datasets: datasets },
      options: {
        animation: false, parsing: false, normalized: true, responsive: true,
        maintainAspectRatio: false, spanGaps: true,
        interaction: { mode: 'nearest', intersect: false },
        plugins: {
          legend: { display: false },
          title: { display: true, text: metric },
          tooltip: { callbacks: { label: function (ctx) {
            var d = ctx.dataset;
            if (d.base) return 'base model (step 0): ' + fmt(ctx.parsed.y);
            return 'job ' + d.job.hash.slice(0, 8) + ' [' + d.job.state + '] ' + paramText(d.job.params) +
                   ': ' + fmt(ctx.parsed.y);
          } } }
        },
        scales: {
          x: { type: 'linear', title: { display: true, text: axisTitle(data) } },
          y: { type: logScale ? 'logarithmic' : 'linear', title: { display: true, text: metric } }
        }
      }
    });
  }

  function points(curve) {
    var out = [];
    for (var i = 0; i < curve.x.length; ++i) out.push({ x: curve.x[i], y: curve.y[i] });
    return out;
  }
  function jobDataset(job, curve, colour, metric) {
    return { label: job.hash, job: job, data: points(curve), borderColor: colour,
             backgroundColor: colour, borderWidth: 1.2,
             pointRadius: metric === 'train_loss' ? 0 : 2 };
  }
  function baseDataset(data, metric, xmax) {
    var v = data.base[metric];
    if (v === undefined || v === null) return null;
    return { label: 'base', base: true, data: [{ x: 0, y: v }, { x: xmax, y: v }],
             borderColor: '#222', borderDash: [6, 4], borderWidth: 1.5, pointRadius: 0 };
  }
  function xmaxOf(datasets) {
    var m = 1;
    datasets.forEach(function (d) { d.data.forEach(function (p) { if (p.x > m) m = p.x; }); });
    return m;
  }

  function renderCurves(data) {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var box = clear(document.getElementById('charts'));
    var note = document.getElementById('curves-note');
    var overlay = byRank(data).slice(0, data.limits.overlay_jobs);
    note.textContent = overlay.length < data.jobs.length
        ? 'showing the ' + overlay.length + ' best of ' + data.jobs.length +
          ' jobs; every job\u2019s curves are in its panel below'
        : data.limits.points_per_curve + ' points per curve at most (all rows: sweep query)';
    var colour = colourer(data, view.colourKey);
    var drawn = 0;
    if (typeof Chart === 'undefined') {
      box.appendChild(el('p', { text: 'The chart library was not available when sweep was built ' +
                                      '(install libjs-chart.js); curves are not drawn.' }));
      return 0;
    }
    var log = document.getElementById('log-scale').checked;
    metricsOf(data).forEach(function (metric) {
      var datasets = [];
      overlay.forEach(function (job) {
        var c = data.curves[String(job.id)];
        if (c && c[metric]) datasets.push(jobDataset(job, c[metric], colour(job), metric));
      });
      drawn += datasets.length;
      var base = baseDataset(data, metric, xmaxOf(datasets));
      if (base) datasets.push(base);
      var canvas = el('canvas', { 'data-metric': metric, 'data-curves': String(datasets.length - (base ? 1 : 0)) });
      box.appendChild(el('div', { className: 'chart-box' }, [canvas]));
      charts.push(lineChart(canvas, data, datasets, metric, log));
    });
    return drawn;
  }

  // --- heatmaps --------------------------------------------------------------------------------
  function renderHeatmaps(data) {
    var root = clear(document.getElementById('heatmap-panels'));
    var X = view.heatX, Y = view.heatY, metric = data.sweep.objective.metric;
    if (!X) { root.appendChild(el('p', { text: 'No swept key: nothing to map.' })); return [0, 0]; }
    var panelKeys = ['learning_rate', 'batch_size'].filter(function (k) {
      return data.swept_keys.indexOf(k) >= 0 && k !== X && k !== Y;
    });
    var xs = distinct(data.jobs.map(function (j) { return j.params[X]; }));
    var ys = Y ? distinct(data.jobs.map(function (j) { return j.params[Y]; })) : [null];
    var panels = {}, order = [];
    data.jobs.forEach(function (j) {
      var key = JSON.stringify(panelKeys.map(function (k) { return j.params[k]; }));
      if (!(key in panels)) { panels[key] = { jobs: [], label: panelKeys.map(function (k) {
        return k + '=' + JSON.stringify(j.params[k]); }).join(', '), values: panelKeys.map(function (k) { return j.params[k]; }) }; order.push(key); }
      panels[key].jobs.push(j);
    });
    order.sort(function (a, b) {
      var va = panels[a].values, vb = panels[b].values;
      for (var i = 0; i < va.length; ++i) { var c = compareValues(va[i], vb[i]); if (c) return c; }
      return 0;
    });
    var values = data.jobs.map(function (j) { return j.objective; }).filter(function (v) { return v !== null; });
    var lo = Math.min.apply(null, values), hi = Math.max.apply(null, values);
    var cells = 0, filled = 0;
    var wrap = el('div', { className: 'panels' });
    order.forEach(function (key) {
      var panel = panels[key];
      var table = el('table', { className: 'heatmap' });
      table.appendChild(el('caption', { text: (panel.label || 'all jobs') + ' \u2014 ' + metric +
                                               ' (best per cell)' }));
      var head = el('tr', null, [el('th', { text: (Y || '') + ' \\ ' + X })]);
      xs.forEach(function (x) { head.appendChild(el('th', { text: fmt(x) })); });
      table.appendChild(el('thead', null, [head]));
      var tbody = el('tbody');
      ys.forEach(function (y) {
        var tr = el('tr', null, [el('th', { text: Y ? fmt(y) : '' })]);
        xs.forEach(function (x) {
          var here = panel.jobs.filter(function (j) {
            return JSON.stringify(j.params[X]) === JSON.stringify(x) &&
                   (!Y || JSON.stringify(j.params[Y]) === JSON.stringify(y));
          });
          var best = null;
          here.forEach(function (j) {
            if (j.objective !== null && (best === null || better(data, j.objective, best.objective))) best = j;
          });
          var marks = distinct(here.map(function (j) { return MARKS[j.state] || ''; })).join('');
          var td = el('td', { className: 'hm-cell' });
          cells += 1;
          if (!here.length) {
            td.className += ' hm-empty';
            td.textContent = '';
          } else {
            filled += 1;
            td.textContent = best ? fmt(best.objective) : '\u2013';
            if (marks) td.appendChild(el('span', { className: 'mark', text: marks }));
            if (best && hi > lo) {
              var t = (best.objective - lo) / (hi - lo);
              if (data.sweep.objective.mode !== 'max') t = 1 - t;
              td.style.background = 'hsl(' + Math.round(120 * t) + ',60%,78%)';
            } else if (!best) {
              td.className += ' hm-empty';
            }
            if (here.some(function (j) { return j.state === 'failed' || j.state === 'diverged' || j.state === 'lost'; }))
              td.className += ' hm-bad';
            td.title = here.map(function (j) {
              return j.hash.slice(0, 8) + ' ' + j.state + ' ' + metric + '=' + fmt(j.objective) + ' ' + paramText(j.params);
            }).join('\n');
            td.addEventListener('click', function () { showJob(data, (best || here[0]).id); });
          }
          tr.appendChild(td);
        });
        tbody.appendChild(tr);
      });
      table.appendChild(tbody);
      wrap.appendChild(table);
    });
    root.appendChild(wrap);
    return [cells, filled];
  }

  // --- leaderboard -----------------------------------------------------------------------------
  function leaderboardColumns(data) {
    var cols = [{ key: 'rank', label: 'rank', get: function (j) { return j.rank; } },
                { key: 'hash', label: 'job', get: function (j) { return j.hash.slice(0, 8); } }];
    data.swept_keys.forEach(function (k) {
      cols.push({ key: 'p:' + k, label: k, get: function (j) { return j.params[k]; } });
    });
    cols.push({ key: 'objective', label: data.sweep.objective.metric + ' (' + data.sweep.objective.mode + ')',
                get: function (j) { return j.objective; } });
    cols.push({ key: 'base', label: 'base (step 0)', get: function (j) { return j.base_objective; } });
    cols.push({ key: 'gain', label: 'gain over base', get: function (j) { return j.gain; } });
    cols.push({ key: 'not_learning', label: 'not learning',
                get: function (j) { return j.not_learning ? 'yes' : null; } });
    cols.push({ key: 'state', label: 'state', get: function (j) { return j.state; } });
    cols.push({ key: 'steps', label: 'steps', get: function (j) { return j.steps; } });
    cols.push({ key: 'tokens', label: 'tokens', get: function (j) { return j.tokens; } });
    cols.push({ key: 'best_step', label: 'best step', get: function (j) { return j.best_step; } });
    cols.push({ key: 'checkpoint', label: 'best checkpoint', get: function (j) { return j.checkpoint || null; } });
    return cols;
  }

  function renderLeaderboard(data) {
    var table = document.getElementById('leaderboard-table');
    var cols = leaderboardColumns(data);
    var head = el('tr');
    cols.forEach(function (c) {
      var arrow = view.sortKey === c.key ? (view.sortUp ? ' \u25b2' : ' \u25bc') : '';
      var th = el('th', { text: c.label + arrow, 'data-key': c.key });
      th.addEventListener('click', function () {
        if (view.sortKey === c.key) view.sortUp = !view.sortUp;
        else { view.sortKey = c.key; view.sortUp = true; }
        view.page = 0;
        renderLeaderboard(data);
      });
      head.appendChild(th);
    });
    clear(table.tHead).appendChild(head);
    var col = cols.find(function (c) { return c.key === view.sortKey; }) || cols[0];
    var rows = data.jobs.slice().sort(function (a, b) {
      var va = col.get(a), vb = col.get(b);
      var nulls = (va === null || va === undefined) - (vb === null || vb === undefined);
      if (nulls) return nulls;  // empty cells last in either direction
      var c = compareValues(va, vb);
      return (view.sortUp ? c : -c) || a.id - b.id;
    });
    var tbody = clear(table.tBodies[0]);
    var fragment = document.createDocumentFragment();
    var pages = Math.max(1, Math.ceil(rows.length / PAGE_ROWS));
    view.page = Math.min(view.page, pages - 1);
    var first = view.page * PAGE_ROWS;
    renderPager(data, first, Math.min(rows.length, first + PAGE_ROWS), rows.length, pages);
    rows.slice(first, first + PAGE_ROWS).forEach(function (j) {
      var tr = el('tr', { 'data-job': String(j.id) });
      if (view.job === j.id) tr.className = 'selected';
      cols.forEach(function (c) {
        var v = c.get(j);
        var td = el('td', { text: c.key === 'tokens' ? fmtCount(v) : fmt(v) });
        if (typeof v === 'number') td.className = 'num';
        if (c.key === 'state') td.className = 'state-' + v;
        if (c.key === 'gain' && typeof v === 'number') td.className = 'num ' + (v > 0 ? 'gain-pos' : 'gain-neg');
        if (c.key === 'not_learning' && v) td.className = 'state-failed';
        tr.appendChild(td);
      });
      tr.addEventListener('click', function () { showJob(data, j.id); });
      fragment.appendChild(tr);
    });
    tbody.appendChild(fragment);
    return rows.length;
  }

  function renderPager(data, from, to, total, pages) {
    var pager = clear(document.getElementById('leaderboard-pager'));
    if (pages <= 1) return;
    function button(label, page) {
      var b = el('button', { text: label });
      b.disabled = page < 0 || page >= pages || page === view.page;
      b.addEventListener('click', function () { view.page = page; renderLeaderboard(data); });
      return b;
    }
    pager.appendChild(button('\u00ab first', 0));
    pager.appendChild(button('\u2039 previous', view.page - 1));
    pager.appendChild(el('span', { text: ' rows ' + (from + 1) + '\u2013' + to + ' of ' + total + ' ' }));
    pager.appendChild(button('next \u203a', view.page + 1));
    pager.appendChild(button('last \u00bb', pages - 1));
  }

  // --- one job ---------------------------------------------------------------------------------
  function simpleTable(headers, rows, id) {
    var t = el('table', id ? { id: id } : null);
    t.appendChild(el('thead', null, [el('tr', null, headers.map(function (h) { return el('th', { text: h }); }))]));
    var tb = el('tbody');
    rows.forEach(function (r) {
      tb.appendChild(el('tr', null, r.map(function (v) {
        return el('td', { text: typeof v === 'number' ? fmt(v) : (v === null || v === undefined ? '\u2013' : String(v)) });
      })));
    });
    t.appendChild(tb);
    return t;
  }

  var jobCharts = [];
  function showJob(data, id) {
    view.job = id;
    jobCharts.forEach(function (c) { c.destroy(); });
    jobCharts = [];
    var job = data.jobs.find(function (j) { return j.id === id; });
    var body = clear(document.getElementById('job-body'));
    Array.prototype.forEach.call(document.querySelectorAll('#leaderboard-table tbody tr'), function (tr) {
      tr.className = tr.getAttribute('data-job') === String(id) ? 'selected' : '';
    });
    if (!job) { body.appendChild(el('p', { text: 'No job selected.' })); return; }
    body.setAttribute('data-job', String(job.id));
    body.appendChild(el('h3', { text: 'Job ' + job.hash + ' \u2014 ' + job.state +
                                      (job.rank ? ', rank ' + job.rank : '') }));
    if (job.error) body.appendChild(el('pre', { className: 'state-failed', text: job.error }));
    body.appendChild(el('h3', { text: 'Parameters' }));
    var params = allParams(data, job);
    body.appendChild(simpleTable(['key', 'value'], Object.keys(params).sort().map(function (k) {
      return [k, JSON.stringify(params[k])];
    }), 'job-params'));
    if (job.objective !== null && job.objective !== undefined) {
      body.appendChild(el('p', { id: 'job-gain', text: data.sweep.objective.metric + ' ' + fmt(job.objective) +
          ' vs the base model ' + fmt(job.base_objective) + ' (gain ' + fmt(job.gain) + ')' }));
    }
    if (job.learning_check) {
      var lc = job.learning_check;
      body.appendChild(el('h3', { text: 'Learning check' + (lc.passed ? ' (passed)' : ' (failed: not learning)') }));
      body.appendChild(simpleTable(['step', 'lora_b_norm', 'lora_grad_norm', 'loss first', 'loss last', 'reason'],
        [[lc.step, lc.lora_b_norm, lc.lora_grad_norm, lc.loss_first, lc.loss_last, lc.reason]],
        'job-learning-check'));
    }
    body.appendChild(el('h3', { text: 'Attempts' }));
    body.appendChild(simpleTable(['attempt', 'state', 'exit code', 'host', 'device', 'time', 'error'],
      job.attempts.map(function (a) {
        return [a.attempt, a.state, a.exit_code, a.host, a.device,
                a.finished_at > 0 ? fmtDuration(a.finished_at - a.started_at) : '', a.error];
      }), 'job-attempts'));
    var curves = data.curves[String(job.id)];
    if (curves && typeof Chart !== 'undefined') {
      body.appendChild(el('h3', { text: 'Curves' }));
      var grid = el('div', { id: 'job-charts' });
      grid.style.display = 'grid';
      grid.style.gridTemplateColumns = 'repeat(auto-fill, minmax(360px, 1fr))';
      grid.style.gap = '12px';
      body.appendChild(grid);
      var log = document.getElementById('log-scale').checked;
      metricsOf(data).forEach(function (metric) {
        if (!curves[metric]) return;
        var ds = [jobDataset(job, curves[metric], '#1a6bd6', metric)];
        var base = baseDataset(data, metric, xmaxOf(ds));
        if (base) ds.push(base);
        var canvas = el('canvas');
        grid.appendChild(el('div', { className: 'chart-box small' }, [canvas]));
        jobCharts.push(lineChart(canvas, data, ds, metric, log));
      });
    }
    body.appendChild(el('h3', { text: 'Kept checkpoints' }));
    body.appendChild(job.checkpoints.length
        ? simpleTable(['step', 'path'], job.checkpoints.map(function (c) { return [c.step, c.path]; }), 'job-checkpoints')
        : el('p', { className: 'note', text: 'none kept' }));
    body.appendChild(el('h3', { text: 'Predictions at the best checkpoint' + (job.best_step !== null ? ' (step ' + job.best_step + ')' : '') }));
    body.appendChild(job.predictions.length
        ? simpleTable(['sample', 'prompt', 'reference', 'prediction'], job.predictions.map(function (p) {
            return [p.id || String(p.sample), p.prompt, p.reference, p.prediction];
          }), 'job-predictions')
        : el('p', { className: 'note', text: 'none kept (the evaluator keeps a few per evaluation)' }));
  }

  // --- the page --------------------------------------------------------------------------------
  function fillSelect(select, keys, value, allowNone) {
    clear(select);
    if (allowNone) select.appendChild(el('option', { value: '', text: '(none)' }));
    keys.forEach(function (k) { select.appendChild(el('option', { value: k, text: k })); });
    select.value = value || '';
  }
  function pick(keys, wanted, fallback) { return keys.indexOf(wanted) >= 0 ? wanted : fallback; }

  function render(data) {
    var keys = data.swept_keys;
    document.getElementById('title').textContent = 'Sweep ' + data.sweep.name;
    document.getElementById('subtitle').textContent = data.jobs.length + ' jobs, objective ' +
        data.sweep.objective.metric + ' (' + data.sweep.objective.mode + '), ' + data.sweep.spec_path +
        ', generated ' + new Date(data.generated_at * 1000).toISOString().replace('T', ' ').slice(0, 19) + ' UTC' +
        (config.live ? ' \u2014 live, refreshed every ' + config.refresh_s + ' s' : '');
    var allKeys = Object.keys(data.fixed_params);
    if (!view.colourKey) view.colourKey = pick(keys, 'lora_r', keys[0] || allKeys[0]);
    if (!view.heatY) view.heatY = pick(keys, 'lora_r', keys[0] || '');
    if (!view.heatX) view.heatX = pick(keys, 'lora_alpha', keys.filter(function (k) { return k !== view.heatY; })[0] || '');
    if (view.heatX === view.heatY && keys.length < 2) view.heatY = '';
    fillSelect(document.getElementById('colour-key'), keys.length ? keys : allKeys, view.colourKey, false);
    fillSelect(document.getElementById('heat-x'), keys, view.heatX, false);
    fillSelect(document.getElementById('heat-y'), keys, view.heatY, true);

    var times = {}, t0 = performance.now();
    function timed(name, fn) {
      var start = performance.now(), result = fn();
      times[name] = Math.round(performance.now() - start);
      return result;
    }
    timed('summary', function () { renderSummary(data); });
    var curves = timed('curves', function () { return renderCurves(data); });
    var heat = timed('heatmaps', function () { return renderHeatmaps(data); });
    var rows = timed('leaderboard', function () { return renderLeaderboard(data); });
    var first = byRank(data)[0];
    timed('job', function () { showJob(data, view.job !== null ? view.job : (first ? first.id : null)); });

    var status = document.getElementById('report-status');
    status.setAttribute('data-jobs', String(data.jobs.length));
    status.setAttribute('data-curves', String(curves));
    status.setAttribute('data-charts', String(charts.length));
    status.setAttribute('data-heatmap-cells', String(heat[0]));
    status.setAttribute('data-heatmap-filled', String(heat[1]));
    status.setAttribute('data-leaderboard-rows', String(rows));
    status.setAttribute('data-errors', String(document.querySelectorAll('#report-errors li').length));
    status.setAttribute('data-ms', JSON.stringify(Object.assign({}, loaded, times)));
    status.setAttribute('data-render-ms', String(Math.round(performance.now() - t0)));
    status.textContent = 'ready';
  }

  var loaded = { start_ms: Math.round(performance.now()) };  // since the navigation started
  var data = JSON.parse(document.getElementById('report-data').textContent);
  loaded.parsed_ms = Math.round(performance.now());
  document.getElementById('colour-key').addEventListener('change', function (e) {
    view.colourKey = e.target.value; renderCurves(data);
  });
  document.getElementById('log-scale').addEventListener('change', function (e) {
    charts.concat(jobCharts).forEach(function (c) {
      c.options.scales.y.type = e.target.checked ? 'logarithmic' : 'linear';
      c.update();
    });
  });
  document.getElementById('heat-x').addEventListener('change', function (e) {
    view.heatX = e.target.value; renderHeatmaps(data);
  });
  document.getElementById('heat-y').addEventListener('change', function (e) {
    view.heatY = e.target.value; renderHeatmaps(data);
  });
  render(data);

  if (config.live) {
    // Served by `sweep report --serve`: the same origin's data.json, re-read while the sweep runs.
    setInterval(function () {
      fetch('data.json', { cache: 'no-store' }).then(function (r) { return r.json(); })
        .then(function (next) { data = next; render(data); })
        .catch(function (e) { console.warn('report refresh failed: ' + e); });
    }, config.refresh_s * 1000);
  }
})();
