// Writes action.yml from src/config.ts (INPUTS, OUTPUTS): the action's interface has one source.
// `npm run gen:action`; test/docs.test.ts fails when action.yml or the README tables are out of date.
import * as fs from 'fs';
import { renderActionYml } from '../src/docs';

fs.writeFileSync('action.yml', renderActionYml());
console.log('wrote action.yml');
