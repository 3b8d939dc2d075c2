import type { Chart } from './charts.ts';

/**
 * Vega-Lite specs → static SVG, in Node: each spec compiled to Vega, run in a headless Vega View
 * (no DOM, no canvas: text widths are estimated) and serialized. Vega and Vega-Lite are loaded
 * here, on the first report, never by a run without `--report` (bench/report.ts measures the
 * cost; the library choice is explained there). Warnings stay silent: the run's stderr is the
 * CLI's, and a chart that cannot be drawn throws.
 */
export async function renderSvgs(charts: readonly Chart[]): Promise<string[]> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const logger = vega.logger(vega.Error);
  const svgs: string[] = [];
  for (const chart of charts) {
    const { spec } = vl.compile(chart.spec, { logger });
    const view = new vega.View(vega.parse(spec), { renderer: 'none', logLevel: vega.Error });
    try {
      svgs.push(await view.toSVG());
    } finally {
      view.finalize();
    }
  }
  return svgs;
}
