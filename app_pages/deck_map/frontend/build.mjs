// Builds dist/main.js from src/main.js and writes the licences of every package bundled
// into it (dist/THIRD_PARTY_LICENSES.txt). The bundle's first line names the SHA-256 of
// the source and of package-lock.json it was built from, so a test can tell when the
// committed bundle is stale.
import {build} from 'esbuild';
import {createHash} from 'node:crypto';
import {readFileSync, readdirSync, writeFileSync} from 'node:fs';
import {join} from 'node:path';

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');
const result = await build({
  entryPoints: ['src/main.js'],
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  legalComments: 'none',
  metafile: true,
  write: false,
  outfile: 'dist/main.js',
  logLevel: 'error',
  conditions: ['visgl:webgl-only'],
  banner: {js: `// built from src/main.js ${sha256('src/main.js')} package-lock.json ${sha256('package-lock.json')}`}
});
writeFileSync('dist/main.js', result.outputFiles[0].contents);

// The package folder of every input with code in the bundle, and its licence file; the
// packages sharing a licence text are listed together above it.
const packages = new Set();
const bundled = Object.values(result.metafile.outputs)[0].inputs;
for (const [input, {bytesInOutput}] of Object.entries(bundled)) {
  if (!bytesInOutput) continue;
  const match = input.match(/^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//);
  if (match) packages.add(match[1]);
}
// Notices of code copied into a package, which its own licence file does not carry.
const COPIED = {
  '@deck.gl/json': 'dist/expression-eval/ is a copy of expression-eval:\n' +
    'Copyright (c) 2023 Don McCurdy. MIT License.'
};
const byText = new Map();  // licence text -> packages
for (const folder of [...packages].sort()) {
  const meta = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8'));
  const files = readdirSync(folder, {withFileTypes: true})
    .filter((entry) => entry.isFile() && /^(licen[cs]e|copying|notice)/i.test(entry.name))
    .map((entry) => entry.name)
    .sort();
  const texts = files.map((name) => readFileSync(join(folder, name), 'utf8').trim());
  if (COPIED[meta.name]) texts.push(COPIED[meta.name]);
  const text = texts.length ? texts.join('\n\n') : `License: ${meta.license}`;
  const named = `${meta.name} ${meta.version}`;
  byText.set(text, [...(byText.get(text) || []), named].filter((v, i, all) => all.indexOf(v) === i));
}
const notices = [...byText].map(([text, names]) => `${names.join('\n')}\n\n${text}\n`);
writeFileSync('dist/THIRD_PARTY_LICENSES.txt', notices.join('\n' + '-'.repeat(72) + '\n\n'));
