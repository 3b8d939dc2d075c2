import type { Chart, ChartSection } from './charts.ts';

/** The run's numbers at the moment every output is staged (what the JSON report says too). */
export interface RunNumbers {
  pages: number;
  albums: number;
  rows: number;
  rejected: number;
  retries: number;
  rateLimited: number;
  rateLimitWaitMs: number;
  tokens: number;
  totalAlbums: number | null;
  serializedBytes: number;
  storedBytes: number;
}

export interface ReportOutput {
  location: string;
  market: string | null;
  rows: number;
  serializedBytes: number;
  storedBytes: number;
  sha256: string | null;
}

/** Everything the page says about the run, besides the charts. */
export interface ReportFacts {
  runId: string;
  startedAt: string;
  /** When every output was staged and the page was drawn (the JSON report's end is later). */
  stagedAt: string;
  stagedSeconds: number;
  source: { via: string; query: string | null; api: string; markets: string[] };
  model: string;
  format: string;
  gzip: boolean;
  numbers: RunNumbers;
  /** Spotify API requests seen by the report (retries included). */
  requests: number;
  outputs: ReportOutput[];
  rejects: string | null;
  manifest: string | null;
  report: string;
  state: { location: string; new: number; seen: number; newOnly: boolean } | null;
  marketsFailed: { market: string; code: string; message: string }[];
  searchCapped: boolean;
  searchLimit: number | null;
  /** How the aggregates bound their memory, for the footer. */
  limits: string[];
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};
/** Text for HTML content and attribute values. */
export const esc = (value: unknown): string =>
  String(value).replace(/[&<>"']/g, (c) => ESCAPES[c] as string);

const n = (value: number) => value.toLocaleString('en-US');

function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  if (count < 1024 * 1024) return `${(count / 1024).toFixed(1)} KiB`;
  if (count < 1024 ** 3) return `${(count / 1024 ** 2).toFixed(1)} MiB`;
  return `${(count / 1024 ** 3).toFixed(2)} GiB`;
}

/** A number the browser test reads back: `data-field` names the JSON report's key. */
const field = (name: string, value: number, text = n(value)) =>
  `<span data-field="${name}" data-value="${value}">${esc(text)}</span>`;

/** A cell of the outputs table the browser test reads back (`data-output-field`). */
const outputField = (
  name: string,
  value: string | number | null,
  text: string,
  { num = false, code = false } = {},
) =>
  `<td data-output-field="${name}" data-value="${esc(value ?? '')}"${num ? ' class="num"' : ''}>${code ? `<code>${esc(text)}</code>` : esc(text)}</td>`;

function table(chart: Chart): string {
  const head = chart.table.columns.map((c) => `<th scope="col">${esc(c)}</th>`).join('');
  const body = chart.table.rows
    .map(
      (row) =>
        `<tr>${row.map((cell) => `<td${typeof cell === 'number' ? ' class="num"' : ''}>${esc(typeof cell === 'number' ? n(cell) : cell)}</td>`).join('')}</tr>`,
    )
    .join('\n');
  return `<details><summary>The numbers (${n(chart.table.rows.length)} ${chart.table.rows.length === 1 ? 'row' : 'rows'})</summary>
<table><caption class="sr">${esc(chart.title)}</caption><thead><tr>${head}</tr></thead><tbody>
${body}
</tbody></table></details>`;
}

/** The chart's SVG as an image with a name and a description (the text alternative). */
function figure(chart: Chart, svg: string): string {
  const id = `chart-${chart.id}`;
  const labelled = svg.replace(
    /^<svg\b/,
    `<svg role="img" aria-labelledby="${id}-title" aria-describedby="${id}-desc"`,
  );
  return `<figure class="chart${chart.wide ? ' wide' : ''}" id="${id}" data-chart="${esc(chart.id)}">
<h3 id="${id}-title">${esc(chart.title)}</h3>
<div class="svg">${labelled}</div>
<figcaption id="${id}-desc">${esc(chart.description)}</figcaption>
${table(chart)}
</figure>`;
}

function section(id: string, title: string, s: ChartSection, svgs: string[]): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>
${s.notes.map((note) => `<p class="note">${esc(note)}</p>`).join('\n')}
<div class="charts">
${s.charts.map((chart, i) => figure(chart, svgs[i] as string)).join('\n')}
</div></section>`;
}

const CSS = `
:root{color-scheme:light;--ink:#1d1d1f;--muted:#5f6368;--line:#e3e3e3;--ok:#1e7b34;--warn:#a15c00}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#fafafa}
main{max-width:960px;margin:0 auto;padding:24px 20px 40px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:14px;margin:0 0 6px}
code{font:12px ui-monospace,SFMono-Regular,Menlo,monospace}
.sub{color:var(--muted);margin:0 0 12px}
.outcome{display:inline-block;padding:4px 10px;border-radius:12px;font-weight:600;background:#e6f4ea;color:var(--ok)}
.outcome.partial{background:#fff4e0;color:var(--warn)}
.tiles{display:grid;grid-template-columns:repeat(auto-fill,minmax(130px,1fr));gap:10px;margin:16px 0}
.tile{background:#fff;border:1px solid var(--line);border-radius:8px;padding:10px 12px}
.tile b{display:block;font-size:20px}.tile small{color:var(--muted)}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.facts th{width:220px;color:var(--muted);font-weight:normal}
.outputs td{word-break:break-all}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(440px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:8px;padding:12px;min-width:0}
figure.wide{grid-column:1/-1}
.svg svg{max-width:100%;height:auto;display:block}
figcaption{color:var(--muted);font-size:12px;margin-top:6px}
details{margin-top:6px;font-size:12px}summary{cursor:pointer;color:#1a5fb4}
.note{color:var(--muted)}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0)}
footer{color:var(--muted);font-size:12px;margin-top:32px;border-top:1px solid var(--line);padding-top:8px}
@media print{body{background:#fff}details{display:none}}
`;

/**
 * The whole page: one HTML file with the charts inline as SVG and the style inline, no script,
 * and a Content-Security-Policy that forbids loading anything, so it opens the same from a
 * file, from S3 or offline, and can make no network request.
 */
export function reportHtml(
  f: ReportFacts,
  data: ChartSection,
  time: ChartSection,
  svgs: string[],
): string {
  const x = f.numbers;
  const failed = f.marketsFailed.length > 0;
  const outcome = failed
    ? `Partial: ${f.marketsFailed.length} market(s) failed and were skipped (exit 7); the others were staged`
    : 'Every output staged';
  const source = [
    f.source.via === 'search' ? `search “${f.source.query ?? ''}”` : 'new releases',
    f.source.markets.length === 0
      ? "Spotify's default market"
      : f.source.markets.length <= 12
        ? f.source.markets.join(', ')
        : `${f.source.markets.length} markets`,
  ].join(' · ');
  const tile = (label: string, value: string) =>
    `<div class="tile"><b>${value}</b><small>${esc(label)}</small></div>`;
  const row = (label: string, value: string) =>
    `<tr><th scope="row">${esc(label)}</th><td>${value}</td></tr>`;
  const outputs = f.outputs
    .map((o) =>
      [
        '<tr data-output>',
        outputField('location', o.location, o.location, { code: true }),
        outputField('market', o.market, o.market ?? ''),
        outputField('rows', o.rows, n(o.rows), { num: true }),
        outputField('storedBytes', o.storedBytes, n(o.storedBytes), { num: true }),
        `<td class="num">${esc(bytes(o.storedBytes))}</td>`,
        outputField('sha256', o.sha256, o.sha256 ?? '—', { code: true }),
        '</tr>',
      ].join(''),
    )
    .join('\n');
  const svgData = svgs.slice(0, data.charts.length);
  const svgTime = svgs.slice(data.charts.length);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="spotify-batch">
<title>spotify-batch run ${esc(f.runId)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
<header>
<h1>spotify-batch run <code><span data-field="runId" data-value="${esc(f.runId)}">${esc(f.runId)}</span></code></h1>
<p class="sub">${esc(source)} · started <time data-field="startedAt" data-value="${esc(f.startedAt)}">${esc(f.startedAt)}</time></p>
<p><span class="outcome${failed ? ' partial' : ''}">${esc(outcome)}</span></p>
</header>
<section class="tiles" aria-label="The run at a glance">
${tile('albums', field('albums', x.albums))}
${tile('rows', field('rows', x.rows))}
${tile('pages', field('pages', x.pages))}
${tile(f.outputs.length === 1 ? 'output' : 'outputs', n(f.outputs.length))}
${tile('seconds until staged', esc(f.stagedSeconds.toFixed(2)))}
${tile('retries', field('retries', x.retries))}
${tile('429 answers', field('rateLimited', x.rateLimited))}
${tile('rejected', field('rejected', x.rejected))}
</section>
<section id="run"><h2>The run</h2>
<table class="facts"><tbody>
${row('run id', `<code>${esc(f.runId)}</code>`)}
${row('source', `${esc(source)} <small>(${esc(f.source.api)})</small>`)}
${row('started', esc(f.startedAt))}
${row('all outputs staged', `${esc(f.stagedAt)} (${esc(f.stagedSeconds.toFixed(2))} s)`)}
${row('outcome', `${esc(outcome)}. This page was staged with the data and published in the same commit.${failed ? ` Failed: ${f.marketsFailed.map((m) => `${esc(m.market)} (${esc(m.code)}: ${esc(m.message)})`).join('; ')}.` : ''}`)}
${row('pages', field('pages', x.pages))}
${row('albums', `${field('albums', x.albums)}${x.totalAlbums === null ? '' : ` <small>of ${field('totalAlbums', x.totalAlbums)} listed</small>`}`)}
${row('rows', field('rows', x.rows))}
${row('rejected records', `${field('rejected', x.rejected)}${f.rejects ? ` → <code>${esc(f.rejects)}</code>` : ''}`)}
${row('API requests', `${n(f.requests)} <small>(tokens: ${field('tokens', x.tokens)})</small>`)}
${row('retries', field('retries', x.retries))}
${row('429 answers', field('rateLimited', x.rateLimited))}
${row('rate-limit wait', `${field('rateLimitWaitMs', x.rateLimitWaitMs)} ms`)}
${row('bytes serialized', `${field('serializedBytes', x.serializedBytes)} <small>(${esc(bytes(x.serializedBytes))})</small>`)}
${row('bytes stored', `${field('storedBytes', x.storedBytes)} <small>(${esc(bytes(x.storedBytes))})</small>`)}
${row('format', esc(`${f.model === 'star' ? 'star schema, ' : ''}${f.format}${f.gzip ? ', gzip' : ''}`))}
${f.searchCapped ? row('search', "stopped at Spotify's search cap of 1000") : ''}
${f.searchLimit === null ? '' : row('search limit', `stepped down to ${n(f.searchLimit)}`)}
${f.state === null ? '' : row('incremental state', `<code>${esc(f.state.location)}</code>: ${n(f.state.new)} new, ${n(f.state.seen)} seen before${f.state.newOnly ? ' (left out)' : ''}`)}
${row('manifest', f.manifest === null ? 'none' : `<code>${esc(f.manifest)}</code> (written last, after this page)`)}
${row('this page', `<code>${esc(f.report)}</code>`)}
</tbody></table>
<h3 style="margin-top:16px">Outputs</h3>
<table class="outputs"><thead><tr><th scope="col">location</th><th scope="col">market</th><th scope="col" class="num">rows</th><th scope="col" class="num">stored bytes</th><th scope="col" class="num">size</th><th scope="col">SHA-256</th></tr></thead><tbody>
${outputs}
</tbody></table>
</section>
${section('data', 'The data', data, svgData)}
${section('time', 'The run over time', time, svgTime)}
<footer>
<p>Drawn by spotify-batch with Vega-Lite, rendered to SVG when the run's outputs were staged. The page loads nothing: no script, no font, no image from elsewhere. Each chart has a text description and its numbers under “The numbers”.</p>
<p>Memory: ${f.limits.map(esc).join(' ')}</p>
<p>The JSON report and the exit status are written after publishing: they also say whether publishing succeeded. Release dates, types, tracks and artists count the albums written to the outputs: after rejects and dedupe, with --new-only the new ones only (without dedupe, an album in two markets counts twice). Albums per market count what each market listed, before rejects, dedupe and --new-only, with the albums written under each market beside them when those differ; the overlap counts distinct albums as listed.</p>
</footer>
</main>
</body>
</html>
`;
}
