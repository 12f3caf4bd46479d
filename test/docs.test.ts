import * as fs from 'fs';
import * as path from 'path';
import * as yaml from 'js-yaml';
import { REPO } from './helpers/caffe';
import { INPUTS, OUTPUTS } from '../src/config';
import { renderActionYml } from '../src/docs';
import { usage } from '../src/cli';

const action = yaml.load(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')) as {
  inputs: Record<string, { description: string; default?: string; required?: boolean }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string; post?: string; 'post-if'?: string };
};
const readme = fs.readFileSync(path.join(REPO, 'README.md'), 'utf8');

/** Rows of the markdown table between `<!-- name:start -->` and `<!-- name:end -->`. */
function tableRows(name: string): string[][] {
  const block = readme.split(`<!-- ${name}:start -->`)[1]?.split(`<!-- ${name}:end -->`)[0];
  if (!block) throw new Error(`README has no ${name} table`);
  return block
    .trim()
    .split('\n')
    .slice(2)
    .map((l) =>
      l
        .split(/(?<!\\)\|/)
        .slice(1, -1)
        .map((c) => c.trim()),
    );
}
const unquote = (c: string) => c.replace(/^`|`$/g, '');

describe('documentation that cannot drift', () => {
  test('action.yml is generated from the input/output spec and runs on node24', () => {
    expect(fs.readFileSync(path.join(REPO, 'action.yml'), 'utf8')).toBe(renderActionYml());
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/index.js', 'post-if': 'always()' });
    expect(Object.keys(action.inputs)).toEqual(INPUTS.map((i) => i.name));
    expect(Object.keys(action.outputs)).toEqual(OUTPUTS.map((o) => o.name));
    for (const [name, spec] of Object.entries(action.inputs)) {
      expect([name, spec.description.length > 10]).toEqual([name, true]);
      // every input states its default (the required stage excepted)
      expect([name, name === 'stage' ? spec.required : typeof spec.default]).toEqual([name, name === 'stage' ? true : 'string']);
    }
    for (const [name, spec] of Object.entries(action.outputs as Record<string, { description: string }>))
      expect([name, spec.description.length > 10]).toEqual([name, true]);
  });

  test('the README inputs table lists exactly the inputs of action.yml with the same defaults', () => {
    const rows = tableRows('inputs').map((r) => [unquote(r[0]), unquote(r[1])]);
    expect(rows).toEqual(Object.entries(action.inputs).map(([n, s]) => [n, s.default ?? '']));
  });

  test('the README outputs table lists exactly the outputs of action.yml', () => {
    expect(tableRows('outputs').map((r) => unquote(r[0]))).toEqual(Object.keys(action.outputs));
  });

  test('every action input is a CLI flag of the same name', () => {
    const help = usage();
    for (const name of Object.keys(action.inputs)) if (name !== 'stage') expect(help).toContain(`--${name}`);
  });
});
