/**
 * A real browser for the tests: Debian's Chromium, headless, driven over the Chrome DevTools
 * Protocol on a pipe (`--remote-debugging-pipe`: no port, no WebSocket, no browser download).
 *
 * The network is blocked three ways: the browser runs in a network namespace of its own with
 * only a loopback that is down (`unshare --net`, when this process may: CI runs as root), every
 * host name resolves to nothing and every proxied request goes to a closed loopback port, and
 * each page is emulated offline. Whatever a page tries is still seen: the test records every
 * request the page makes (Network.requestWillBeSent fires before any of that blocks it).
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

type Params = Record<string, unknown>;
interface Message {
  id?: number;
  method?: string;
  params?: Params;
  result?: Params;
  error?: { message: string };
  sessionId?: string;
}

interface Waiter {
  method: string;
  session: string;
  resolve: () => void;
}

/** What a page did while it was open. */
export interface PageLog {
  /** Every URL the page requested (the document itself included). */
  requests: string[];
  /** Console messages and log entries at level error, and uncaught exceptions. */
  errors: string[];
}

export class Page {
  readonly log: PageLog = { requests: [], errors: [] };
  readonly #browser: Browser;
  readonly #session: string;
  readonly #targetId: string;

  constructor(browser: Browser, session: string, targetId: string) {
    this.#browser = browser;
    this.#session = session;
    this.#targetId = targetId;
  }

  send(method: string, params: Params = {}): Promise<Params> {
    return this.#browser.send(method, params, this.#session);
  }

  /** Handles the page's events (called by the browser for this page's session). */
  event(method: string, params: Params): void {
    switch (method) {
      case 'Network.requestWillBeSent':
        this.log.requests.push((params.request as { url: string }).url);
        break;
      case 'Runtime.consoleAPICalled':
        if (params.type === 'error' || params.type === 'assert') {
          this.log.errors.push(
            `console.${params.type}: ${JSON.stringify((params.args as { value?: unknown }[]).map((a) => a.value))}`,
          );
        }
        break;
      case 'Runtime.exceptionThrown':
        this.log.errors.push(
          `exception: ${(params.exceptionDetails as { text: string }).text ?? 'uncaught'}`,
        );
        break;
      case 'Log.entryAdded': {
        const entry = params.entry as { level: string; text: string; url?: string };
        if (entry.level === 'error') {
          this.log.errors.push(`log: ${entry.text}${entry.url ? ` (${entry.url})` : ''}`);
        }
        break;
      }
    }
  }

  /** Opens `url` and resolves once its load event fired. */
  async goto(url: string): Promise<void> {
    const loaded = this.#browser.once('Page.loadEventFired', this.#session);
    const result = await this.send('Page.navigate', { url });
    if (typeof result.errorText === 'string') throw new Error(`${url}: ${result.errorText}`);
    await loaded;
  }

  /** The value of `expression` in the page (JSON-serializable). */
  async evaluate<T>(expression: string): Promise<T> {
    const result = await this.send('Runtime.evaluate', {
      expression,
      returnByValue: true,
      awaitPromise: true,
    });
    if (result.exceptionDetails) {
      throw new Error(`evaluate: ${JSON.stringify(result.exceptionDetails)}`);
    }
    return (result.result as { value: T }).value;
  }

  /** A PNG of the whole page at `width` CSS pixels. */
  async screenshot(width: number): Promise<Buffer> {
    await this.send('Emulation.setDeviceMetricsOverride', {
      width,
      height: 800,
      deviceScaleFactor: 1,
      mobile: false,
    });
    const metrics = await this.send('Page.getLayoutMetrics');
    const { height } = metrics.cssContentSize as { height: number };
    await this.send('Emulation.setDeviceMetricsOverride', {
      width,
      height: Math.ceil(height),
      deviceScaleFactor: 1,
      mobile: false,
    });
    const shot = await this.send('Page.captureScreenshot', { format: 'png' });
    return Buffer.from(shot.data as string, 'base64');
  }

  close(): Promise<unknown> {
    return this.#browser.send('Target.closeTarget', { targetId: this.#targetId });
  }
}

export class Browser {
  readonly #child: ChildProcess;
  readonly #profile: string;
  readonly #pending = new Map<
    number,
    { resolve: (r: Params) => void; reject: (e: Error) => void }
  >();
  readonly #pages = new Map<string, Page>();
  readonly #waiters: Waiter[] = [];
  readonly #exited: Promise<void>;
  #id = 0;
  #buffer = '';
  /** Whether the browser ran in a network namespace of its own. */
  readonly isolated: boolean;

  private constructor(child: ChildProcess, profile: string, isolated: boolean) {
    this.#child = child;
    this.#profile = profile;
    this.isolated = isolated;
    const out = child.stdio[4] as Readable;
    out.setEncoding('utf8');
    out.on('data', (chunk: string) => this.#receive(chunk));
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.#exited.then(() => {
      for (const { reject } of this.#pending.values()) reject(new Error('the browser exited'));
      this.#pending.clear();
    });
  }

  /** Starts Chromium headless, without network. */
  static async launch(): Promise<Browser> {
    if (!existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} not found: install Debian's chromium (apt-get install chromium; .ci/run does) or set CHROMIUM`,
      );
    }
    const profile = await mkdtemp(join(tmpdir(), 'spotify-batch-chromium-'));
    const args = [
      '--headless',
      '--remote-debugging-pipe',
      `--user-data-dir=${profile}`,
      // Root (CI) cannot use Chromium's sandbox; the page is our own static file.
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--no-first-run',
      '--no-default-browser-check',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-extensions',
      '--disable-sync',
      '--disable-domain-reliability',
      '--disable-client-side-phishing-detection',
      '--disable-features=Translate,MediaRouter,OptimizationHints,AutofillServerCommunication',
      '--no-pings',
      '--metrics-recording-only',
      '--mute-audio',
      '--hide-scrollbars',
      '--host-resolver-rules=MAP * ~NOTFOUND',
      '--proxy-server=127.0.0.1:9',
      '--proxy-bypass-list=<-loopback>',
      'about:blank',
    ];
    const isolated = spawnSync('unshare', ['--net', 'true']).status === 0;
    const [command, argv] = isolated ? ['unshare', ['--net', CHROMIUM, ...args]] : [CHROMIUM, args];
    const child = spawn(command, argv as string[], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-4000);
    });
    const browser = new Browser(child, profile, isolated);
    await Promise.race([
      browser.send('Browser.getVersion'),
      browser.#exited.then(() => {
        throw new Error(`chromium exited at start:\n${stderr}`);
      }),
    ]);
    return browser;
  }

  #receive(chunk: string): void {
    this.#buffer += chunk;
    for (let end = this.#buffer.indexOf('\0'); end >= 0; end = this.#buffer.indexOf('\0')) {
      const message = JSON.parse(this.#buffer.slice(0, end)) as Message;
      this.#buffer = this.#buffer.slice(end + 1);
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(message.error.message));
        else pending?.resolve(message.result ?? {});
        continue;
      }
      if (message.method === undefined) continue;
      if (message.sessionId !== undefined) {
        this.#pages.get(message.sessionId)?.event(message.method, message.params ?? {});
      }
      for (let i = this.#waiters.length - 1; i >= 0; i--) {
        const w = this.#waiters[i] as Waiter;
        if (w.method === message.method && w.session === message.sessionId) {
          this.#waiters.splice(i, 1);
          w.resolve();
        }
      }
    }
  }

  send(method: string, params: Params = {}, sessionId?: string): Promise<Params> {
    const id = ++this.#id;
    const message = JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) });
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      (this.#child.stdio[3] as Writable).write(`${message}\0`);
    });
  }

  /** Resolves on the next `method` event of `session`. */
  once(method: string, session: string): Promise<void> {
    return new Promise((resolve) => this.#waiters.push({ method, session, resolve }));
  }

  /** A new tab, offline, with requests, console and log recorded from the start. */
  async newPage(): Promise<Page> {
    const { targetId } = (await this.send('Target.createTarget', { url: 'about:blank' })) as {
      targetId: string;
    };
    const { sessionId } = (await this.send('Target.attachToTarget', {
      targetId,
      flatten: true,
    })) as { sessionId: string };
    const page = new Page(this, sessionId, targetId);
    this.#pages.set(sessionId, page);
    await Promise.all([
      page.send('Network.enable'),
      page.send('Runtime.enable'),
      page.send('Log.enable'),
      page.send('Page.enable'),
    ]);
    await page.send('Network.emulateNetworkConditions', {
      offline: true,
      latency: 0,
      downloadThroughput: -1,
      uploadThroughput: -1,
    });
    return page;
  }

  async close(): Promise<void> {
    await this.send('Browser.close').catch(() => {});
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5_000);
    await this.#exited;
    clearTimeout(timer);
    await rm(this.#profile, { recursive: true, force: true });
  }
}
