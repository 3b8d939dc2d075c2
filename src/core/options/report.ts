import { usageError } from '../errors.ts';
import type { Format, Via } from '../options.ts';
import { sideLocation } from './checks.ts';
import type { MarketsConfig } from './markets.ts';
import type { OutputsConfig } from './outputs.ts';
import type { SourceConfig } from './source.ts';
import type { StateConfig } from './state.ts';

/** `--report`: where the page goes, and what it states of the run's settings. */
export interface ReportConfig {
  /** Templates not yet filled in; undefined: no report. */
  location: string | undefined;
  settings: ReportedSettings;
}

/** The run's settings as the page states them. */
export interface ReportedSettings {
  via: Via;
  /** The search query; null for new-releases. */
  query: string | null;
  apiUrl: string;
  markets: string[];
  model: 'flat' | 'star';
  format: Format;
  gzip: boolean;
  newOnly: boolean;
}

export function normalizeReport(
  report: string | undefined,
  run: { source: SourceConfig; markets: MarketsConfig; outputs: OutputsConfig; state: StateConfig },
): ReportConfig {
  const location = sideLocation('--report', report, 'a file path or s3:// key ending in .html');
  if (location !== undefined && !/\.html?$/i.test(location)) {
    throw usageError(`option --report: the page is HTML, name it .html, got ${location}`);
  }
  const { source, markets, outputs, state } = run;
  return {
    location,
    settings: {
      via: source.via,
      query: source.via === 'search' ? source.query : null,
      apiUrl: source.spotify.apiUrl,
      markets: markets.list,
      model: outputs.model,
      format: outputs.format,
      gzip: outputs.gzip,
      newOnly: state.newOnly,
    },
  };
}
