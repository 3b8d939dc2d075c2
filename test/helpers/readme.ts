/**
 * The shell examples of a Markdown file, and what each command of them promises: which exit
 * status, which outputs (stdout, files, S3 objects). Used by test/readme.test.ts; nothing here
 * knows the README's current text, so sections added later are picked up as they are.
 */
import { spawnSync } from 'node:child_process';

/** Fence languages whose blocks are shell examples. */
const SHELL_LANGS = new Set(['sh', 'bash', 'shell', 'zsh', 'console', 'shell-session']);
/** `<!-- readme-test: skip (reason) -->`, the only marker form. */
const MARKER = /^\s*<!--\s*readme-test:\s*skip\s*\((.*)\)\s*-->\s*$/;
/** Any comment that mentions the marker, to catch misspelt or stray ones. */
const MARKER_LIKE = /<!--\s*readme-test\b/;
const FENCE_OPEN = /^(\s*)(`{3,}|~{3,})\s*([^\s`]*)/;

export interface Command {
  /** 1-based line in the Markdown file where the command starts. */
  line: number;
  /** The command as written (continuation lines joined by their own `\`+newline). */
  text: string;
  /** Comment lines right above it and its trailing comment, without `#`. */
  comments: string[];
  /** The exit status its comment documents (`# exits 7`), else 0. */
  expectedStatus: number;
}

export interface Block {
  /** 1-based line of the opening fence. */
  line: number;
  /** The fence's info string's first word (`sh`, `sql`, … or `''`). */
  lang: string;
  /** A shell example: a shell fence, or any fence with `$ ` prompt lines. */
  shell: boolean;
  /** The reason of the `readme-test: skip` marker right before the block, if any. */
  skip?: string;
  /** The block's text (indentation of the fence removed). */
  text: string;
  /** Shell examples only: the commands, in order. */
  commands: Command[];
}

export interface Extracted {
  blocks: Block[];
  /** Markers that are malformed or not right before a fenced block. */
  problems: string[];
}

/**
 * Every fenced block of `markdown`, with skip markers and, for shell blocks, the commands.
 * `file` names the Markdown file in the problems found.
 */
export function extractBlocks(markdown: string, file = 'README.md'): Extracted {
  const lines = markdown.split(/\r?\n/);
  const blocks: Block[] = [];
  const problems: string[] = [];
  const used = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i] ?? '');
    if (!open) continue;
    const [, indent = '', fence = '', lang = ''] = open;
    const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !close.test(lines[j] ?? ''); j++) {
      const text = lines[j] ?? '';
      body.push(text.startsWith(indent) ? text.slice(indent.length) : text.trimStart());
    }
    // The marker: the nearest non-blank line above the fence.
    let k = i - 1;
    while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
    const marker = k >= 0 ? MARKER.exec(lines[k] ?? '') : null;
    let skip: string | undefined;
    if (marker) {
      used.add(k);
      skip = (marker[1] ?? '').trim();
      if (skip === '') problems.push(`${file}:${k + 1}: a skip marker needs a reason`);
    }
    const bodyStart = i + 2;
    const prompted = body.some((l) => /^\$ /.test(l));
    const shell = SHELL_LANGS.has(lang.toLowerCase()) || prompted;
    blocks.push({
      line: i + 1,
      lang,
      shell,
      ...(skip === undefined ? {} : { skip }),
      text: body.join('\n'),
      commands: shell ? splitCommands(body, bodyStart, prompted) : [],
    });
    i = j;
  }
  lines.forEach((text, n) => {
    if (MARKER_LIKE.test(text) && !used.has(n)) {
      problems.push(
        `${file}:${n + 1}: \`${text.trim()}\` is not a \`<!-- readme-test: skip (reason) -->\` marker right before a fenced block`,
      );
    }
  });
  return { blocks, problems };
}

/** Whether bash parses `text` as complete commands (no open quote, heredoc, `if`, …). */
function complete(text: string): boolean {
  const result = spawnSync('bash', ['-n'], { input: text, encoding: 'utf8' });
  return result.status === 0 && result.stderr === '';
}

const endsWithBackslash = (line: string) => /(^|[^\\])(\\\\)*\\$/.test(line);

/**
 * The commands of a shell block: a line, plus the lines after it that bash needs to complete
 * it (`\` continuations, open quotes, heredocs, `if … fi`). In prompt style (`$ cmd`), only the
 * prompted lines and their continuations; the rest is shown output.
 */
function splitCommands(body: string[], firstLine: number, prompted: boolean): Command[] {
  const commands: Command[] = [];
  let comments: string[] = [];
  for (let i = 0; i < body.length; i++) {
    let first = body[i] ?? '';
    if (prompted) {
      if (!first.startsWith('$ ')) {
        comments = [];
        continue;
      }
      first = first.slice(2);
    }
    if (first.trim() === '') {
      comments = [];
      continue;
    }
    if (/^\s*#/.test(first)) {
      comments.push(first.replace(/^\s*#+\s?/, ''));
      continue;
    }
    const start = i;
    const parts = [first];
    const more = () => i + 1 < body.length;
    const next = () => {
      i++;
      const line = body[i] ?? '';
      parts.push(prompted ? line.replace(/^> ?/, '') : line);
    };
    while ((endsWithBackslash(parts.at(-1) ?? '') || !complete(parts.join('\n'))) && more()) {
      next();
    }
    const text = parts.join('\n');
    const trailing = shellWords(text).comments;
    const all = [...comments, ...trailing];
    commands.push({
      line: firstLine + start,
      text,
      comments: all,
      expectedStatus: documentedStatus(all),
    });
    comments = [];
  }
  return commands;
}

/** `# exits 7`, `# exit status 2`, `# exit code 3` → that status; else 0. */
export function documentedStatus(comments: string[]): number {
  for (const comment of comments) {
    const match = /\bexit(?:s|s with| status| code| with)?\s+(\d{1,3})\b/i.exec(comment);
    if (match) return Number(match[1]);
  }
  return 0;
}

/** A shell token: a word (quotes removed), an operator, or a redirection. */
export type Token =
  | { type: 'word'; value: string; raw: string }
  | { type: 'op'; value: string }
  | { type: 'redirect'; fd: number; op: '>' | '>>' | '<' | '&>' | 'dup'; target?: string };

/**
 * Splits shell text into words and operators the way bash would for simple commands: quotes
 * and backslashes removed, `#` comments set aside. Expansions (`$VAR`, `$(…)`) are kept as
 * written; {@link words} callers treat such words as unknown.
 */
export function shellWords(text: string): { tokens: Token[]; comments: string[] } {
  const tokens: Token[] = [];
  const comments: string[] = [];
  let word = '';
  let raw = '';
  let inWord = false;
  const flush = () => {
    if (inWord) tokens.push({ type: 'word', value: word, raw });
    word = '';
    raw = '';
    inWord = false;
  };
  let i = 0;
  const pendingRedirect = (): boolean => {
    const last = tokens.at(-1);
    return last?.type === 'redirect' && last.op !== 'dup' && last.target === undefined;
  };
  const pushWord = () => {
    if (!inWord) return;
    if (pendingRedirect()) {
      const last = tokens.at(-1) as Extract<Token, { type: 'redirect' }>;
      last.target = word;
      word = '';
      raw = '';
      inWord = false;
      return;
    }
    flush();
  };
  while (i < text.length) {
    const c = text[i] as string;
    if (c === '\\') {
      if (text[i + 1] === '\n') {
        i += 2;
        continue;
      }
      word += text[i + 1] ?? '';
      raw += text.slice(i, i + 2);
      inWord = true;
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      const stop = end === -1 ? text.length : end;
      word += text.slice(i + 1, stop);
      raw += text.slice(i, stop + 1);
      inWord = true;
      i = stop + 1;
      continue;
    }
    if (c === '"') {
      raw += c;
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && '"\\$`\n'.includes(text[i + 1] ?? '')) {
          if (text[i + 1] !== '\n') word += text[i + 1];
          raw += text.slice(i, i + 2);
          i += 2;
          continue;
        }
        word += text[i];
        raw += text[i];
        i++;
      }
      raw += '"';
      i++;
      inWord = true;
      continue;
    }
    if (c === '$' && text[i + 1] === '(') {
      let depth = 0;
      const start = i;
      for (; i < text.length; i++) {
        if (text[i] === '(') depth++;
        else if (text[i] === ')' && --depth === 0) break;
      }
      word += text.slice(start, i + 1);
      raw += text.slice(start, i + 1);
      inWord = true;
      i++;
      continue;
    }
    if (c === '#' && !inWord) {
      const end = text.indexOf('\n', i);
      comments.push(
        text
          .slice(i, end === -1 ? text.length : end)
          .replace(/^#+\s?/, '')
          .trim(),
      );
      i = end === -1 ? text.length : end;
      continue;
    }
    if (c === ' ' || c === '\t') {
      pushWord();
      i++;
      continue;
    }
    if (c === '\n' || c === ';' || c === '(' || c === ')') {
      pushWord();
      tokens.push({ type: 'op', value: c === '\n' ? ';' : c });
      i++;
      continue;
    }
    if (c === '&' && text[i + 1] === '>') {
      pushWord();
      const append = text[i + 2] === '>';
      tokens.push({ type: 'redirect', fd: 1, op: '&>' });
      i += append ? 3 : 2;
      continue;
    }
    if (c === '|' || c === '&') {
      pushWord();
      const two = text[i + 1] === c;
      tokens.push({ type: 'op', value: two ? c + c : c });
      i += two ? 2 : 1;
      continue;
    }
    if (c === '>' || c === '<') {
      // `2>`, `1>>`: a word of digits right before is the file descriptor.
      let fd = c === '>' ? 1 : 0;
      if (inWord && /^\d+$/.test(raw)) {
        fd = Number(word);
        word = '';
        raw = '';
        inWord = false;
      } else {
        pushWord();
      }
      if (c === '>' && text[i + 1] === '&') {
        // `2>&1`, `>&2`: a duplication, no file.
        const m = /^>&(\d+|-)/.exec(text.slice(i));
        tokens.push({ type: 'redirect', fd, op: 'dup' });
        i += m ? m[0].length : 2;
        continue;
      }
      const append = c === '>' && text[i + 1] === '>';
      tokens.push({ type: 'redirect', fd, op: c === '<' ? '<' : append ? '>>' : '>' });
      i += append ? 2 : 1;
      continue;
    }
    word += c;
    raw += c;
    inWord = true;
    i++;
  }
  pushWord();
  return { tokens, comments };
}

/** One simple command of a command line: its words, redirections, and pipe neighbours. */
export interface SimpleCommand {
  words: string[];
  /** Words as written (quotes kept), to tell literal text from expansions. */
  raw: string[];
  redirects: Extract<Token, { type: 'redirect' }>[];
  /** Its stdout goes into the next command's stdin. */
  pipedTo?: SimpleCommand;
}

/** The simple commands of a command line, in order. */
export function simpleCommands(text: string): SimpleCommand[] {
  const { tokens } = shellWords(text);
  const commands: SimpleCommand[] = [];
  let current: SimpleCommand = { words: [], raw: [], redirects: [] };
  let pipe = false;
  const end = (piped: boolean) => {
    if (current.words.length > 0 || current.redirects.length > 0) {
      const previous = commands.at(-1);
      if (pipe && previous) previous.pipedTo = current;
      commands.push(current);
    }
    current = { words: [], raw: [], redirects: [] };
    pipe = piped;
  };
  for (const token of tokens) {
    if (token.type === 'word') {
      current.words.push(token.value);
      current.raw.push(token.raw);
    } else if (token.type === 'redirect') current.redirects.push(token);
    else end(token.value === '|');
  }
  end(false);
  return commands;
}

/** What a command reaches beyond loopback: http(s) URLs to other hosts. */
export function remoteUrls(text: string): string[] {
  const urls = text.match(/\bhttps?:\/\/[^\s'"`)]+/g) ?? [];
  return urls.filter((url) => {
    try {
      const host = new URL(url).hostname;
      return !['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host);
    } catch {
      return true;
    }
  });
}

/** What an output should hold, as far as the command line says. */
export interface Format {
  /** `any`: only that it exists (a rejects file may be empty). */
  type: 'csv' | 'ndjson' | 'parquet' | 'json' | 'any';
  gzip: boolean;
  /** CSV only: exactly these columns, or any names. */
  header: string[] | 'any';
}

/** An output a command promises to leave. Locations may hold `{date}` and `{run_id}`. */
export type Promised =
  | { where: 'stdout'; format: Format; what: string }
  | { where: 'file'; path: string; format: Format; what: string }
  | { where: 's3'; bucket: string; key: string; format: Format; what: string };

/** One `spotify-batch` (or `npx spotify-batch`) invocation found in a command line. */
export interface CliCall {
  args: string[];
  subcommand: string | undefined;
  /** Outputs it promises when it exits 0. */
  promised: Promised[];
  /** Why some output cannot be checked (an expansion, a device, a pipe into a program). */
  unchecked: string[];
}

/** The seven contract columns, in order (../shared/DESIGN.md). */
export const CONTRACT_COLUMNS = [
  'album_id',
  'album_name',
  'release_date',
  'album_spotify_url',
  'artist_id',
  'artist_name',
  'artist_spotify_url',
];
/** The star schema's tables, as the README names them. */
export const STAR_TABLES = ['dim_album', 'dim_artist', 'bridge_album_artist'];
/** Flags whose value is an output location (each written when given). */
const LOCATION_FLAGS = ['rejects', 'report', 'raw', 'state'];
/** Flags that take a value, by every name they go by. */
const VALUE_FLAGS: Record<string, string> = {
  out: 'out',
  o: 'out',
  market: 'market',
  m: 'market',
  model: 'model',
  format: 'format',
  columns: 'columns',
  rejects: 'rejects',
  report: 'report',
  raw: 'raw',
  state: 'state',
};
/** Programs that pass what they read on to their stdout from its start. */
const PASS_THROUGH = new Set(['head', 'cat', 'tee']);

/** The `spotify-batch` invocations of a command line and what each promises. */
export function cliCalls(text: string, allMarkets: readonly string[]): CliCall[] {
  const calls: CliCall[] = [];
  for (const command of simpleCommands(text)) {
    let words = command.words;
    while (words.length > 0 && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[0] ?? '')) {
      words = words.slice(1);
    }
    if (words[0] === 'npx') {
      words = words.slice(1);
      while ((words[0] ?? '').startsWith('-')) words = words.slice(1);
    }
    if (words[0] !== 'spotify-batch') continue;
    calls.push(analyse(command, words.slice(1), allMarkets));
  }
  return calls;
}

function analyse(command: SimpleCommand, args: string[], allMarkets: readonly string[]): CliCall {
  const values = new Map<string, string[]>();
  const booleans = new Map<string, boolean>();
  let subcommand: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] ?? '';
    const long = /^--?([^=]+)(?:=(.*))?$/s.exec(arg);
    if (!long || arg === '-') {
      if (subcommand === undefined && i === 0) subcommand = arg;
      continue;
    }
    const [, name = '', inline] = long;
    const canonical = VALUE_FLAGS[name];
    if (canonical) {
      const value = inline ?? args[++i] ?? '';
      values.set(canonical, [...(values.get(canonical) ?? []), value]);
    } else if (name.startsWith('no-')) booleans.set(name.slice(3), false);
    else booleans.set(name, true);
  }
  const promised: Promised[] = [];
  const unchecked: string[] = [];
  const call: CliCall = { args, subcommand, promised, unchecked };
  const pulls = subcommand === 'new-releases' || subcommand === 'replay';
  if (!pulls || booleans.get('help') || booleans.get('version')) return call;

  const last = (name: string) => values.get(name)?.at(-1);
  const list = (name: string) =>
    (values.get(name) ?? []).flatMap((v) => v.split(',')).map((v) => v.trim());
  const out = last('out') ?? '-';
  const markets = list('market').map((m) => m.toUpperCase());
  const expandedMarkets = markets.includes('ALL') ? [...allMarkets] : markets;
  const columns = list('columns');
  const star = last('model') === 'star';
  const formatOf = (name: string, header: Format['header']): Format => {
    const gz = /\.gz$/i.test(name);
    const base = name.replace(/\.gz$/i, '');
    const byName = /\.parquet$/i.test(base)
      ? 'parquet'
      : /\.(ndjson|jsonl)$/i.test(base)
        ? 'ndjson'
        : 'csv';
    const type = (last('format') ?? byName) as Format['type'];
    return { type, gzip: booleans.get('gzip') ?? gz, header };
  };
  // The README: one market keeps the seven columns; several into one output add `market`.
  const oneOutput = !star && !out.includes('{market}');
  const header: Format['header'] =
    columns.length > 0
      ? columns
      : oneOutput && expandedMarkets.length > 1
        ? [...CONTRACT_COLUMNS, 'market']
        : CONTRACT_COLUMNS;

  const at = (location: string, format: Format, what: string) => {
    if (/[$`]/.test(location)) {
      unchecked.push(`${what} ${location}: an expansion the test does not evaluate`);
      return;
    }
    const s3 = /^s3:\/\/([^/]+)\/(.*)$/i.exec(location);
    if (s3) promised.push({ where: 's3', bucket: s3[1] ?? '', key: s3[2] ?? '', format, what });
    else if (location.startsWith('/dev/')) unchecked.push(`${what} ${location}: a device`);
    else promised.push({ where: 'file', path: location, format, what });
  };

  if (out === '-') {
    const format = formatOf('-', header);
    const sink = stdoutOf(command);
    if (sink.kind === 'captured') promised.push({ where: 'stdout', format, what: 'stdout' });
    else if (sink.kind === 'file') at(sink.path, format, 'stdout redirected to');
    else unchecked.push(`stdout ${sink.why}`);
  } else if (star) {
    for (const table of STAR_TABLES) at(`${out}${table}`, formatOf('', 'any'), `table ${table}`);
  } else if (out.includes('{market}')) {
    for (const market of expandedMarkets) {
      const location = out.replaceAll('{market}', market);
      at(location, formatOf(location, header), `market ${market}`);
    }
  } else {
    at(out, formatOf(out, header), '--out');
  }
  for (const flag of LOCATION_FLAGS) {
    const location = last(flag);
    if (location === undefined) continue;
    at(location, { type: 'any', gzip: false, header: 'any' }, `--${flag}`);
  }
  const manifest = out !== '-' && (booleans.get('manifest') ?? (star || out.includes('{market}')));
  if (manifest) {
    const fixed = out.includes('{market}') ? out.slice(0, out.indexOf('{market}')) : out;
    const dir = fixed.slice(0, fixed.lastIndexOf('/') + 1);
    at(`${dir}_manifest.json`, { type: 'json', gzip: false, header: 'any' }, 'the manifest');
  }
  return call;
}

type StdoutSink =
  | { kind: 'captured' }
  | { kind: 'file'; path: string }
  | { kind: 'none'; why: string };

/** Where a simple command's stdout ends up: the command line's stdout, a file, or elsewhere. */
function stdoutOf(command: SimpleCommand): StdoutSink {
  const redirect = command.redirects.filter((r) => (r.fd === 1 && r.op !== '<') || r.op === '&>');
  const last = redirect.at(-1);
  if (last?.op === 'dup') return { kind: 'none', why: 'redirected to another descriptor' };
  if (last?.target !== undefined) return { kind: 'file', path: last.target };
  if (!command.pipedTo) return { kind: 'captured' };
  const program = command.pipedTo.words[0] ?? '';
  if (!PASS_THROUGH.has(program)) return { kind: 'none', why: `piped into ${program}` };
  return stdoutOf(command.pipedTo);
}
