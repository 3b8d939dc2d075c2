/**
 * Renders yargs' help for every command into dist/src/cli/help.json (part of `npm run build`):
 * the CLI prints it for `--help` without loading yargs (src/cli/main.ts, prerenderedHelp), as
 * long as the compiled modules it names by digest (`sources`) are the ones it was rendered from.
 */
import { writeFileSync } from 'node:fs';
import { helpSources, renderHelp } from '../src/cli/main.ts';

const cli = new URL('../dist/src/cli/', import.meta.url);
const file = { sources: helpSources(cli), help: await renderHelp() };
writeFileSync(new URL('help.json', cli), `${JSON.stringify(file, null, 1)}\n`);
