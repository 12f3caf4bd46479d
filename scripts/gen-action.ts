// Writes action.yml and the README's input/output tables from src/config.ts (INPUTS, OUTPUTS): the action's
// interface has one source. `npm run gen:docs`; test/docs.test.ts fails when either is out of date.
import * as fs from 'fs';
import { renderActionYml, renderInputsTable, renderOutputsTable, replaceBetween } from '../src/docs';

fs.writeFileSync('action.yml', renderActionYml());
let readme = fs.readFileSync('README.md', 'utf8');
readme = replaceBetween(readme, 'inputs', renderInputsTable());
readme = replaceBetween(readme, 'outputs', renderOutputsTable());
fs.writeFileSync('README.md', readme);
console.log('wrote action.yml and the README tables');
