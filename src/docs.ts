import { INPUTS, OUTPUTS } from './config';

/** action.yml, rendered from the one input/output spec. */
export function renderActionYml(): string {
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    '# Generated from src/config.ts by `npm run gen:docs`; edit the spec there, not this file.',
    "name: 'modelship'",
    "description: 'Ship a trained Caffe model to production on GPUs: convert to ONNX with parity against Caffe, compile, image, smoke, rollout.'",
    "author: 'modelship'",
    'branding:',
    '  icon: package',
    '  color: blue',
    'inputs:',
  ];
  for (const i of INPUTS) {
    lines.push(`  ${i.name}:`, `    description: ${q(i.description)}`, `    required: ${i.name === 'stage'}`);
    // every optional input states its default, empty included (stage is the one required input)
    if (i.name !== 'stage') lines.push(`    default: ${q(i.default)}`);
  }
  lines.push('outputs:');
  for (const o of OUTPUTS) lines.push(`  ${o.name}:`, `    description: ${q(o.description)}`);
  lines.push('runs:', "  using: 'node24'", "  main: 'dist/index.js'", "  post: 'dist/index.js'", "  post-if: 'always()'", '');
  return lines.join('\n');
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The README's inputs table (between the `<!-- inputs -->` markers). */
export function renderInputsTable(): string {
  return [
    '| input | default | description |',
    '|---|---|---|',
    ...INPUTS.map(
      (i) => `| \`${i.name}\` | ${i.default === '' ? '' : `\`${cell(i.default)}\``} | ${cell(i.description)}${i.name === 'stage' ? ' **Required.**' : ''} |`,
    ),
  ].join('\n');
}

/** The README's outputs table (between the `<!-- outputs -->` markers). */
export function renderOutputsTable(): string {
  return ['| output | description |', '|---|---|', ...OUTPUTS.map((o) => `| \`${o.name}\` | ${cell(o.description)} |`)].join('\n');
}

/** Replace the text between `<!-- name:start -->` and `<!-- name:end -->`. */
export function replaceBetween(doc: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const i = doc.indexOf(start);
  const j = doc.indexOf(end);
  if (i < 0 || j < i) throw new Error(`README has no ${start} ... ${end} block`);
  return doc.slice(0, i + start.length) + '\n' + body + '\n' + doc.slice(j);
}
