// ESLint (`npm run lint`, run by scripts/test.sh, hence .ci/run): typescript-eslint's type-checked recommended rules
// over src/, bench/, scripts/ and test/; formatting is Prettier's (`npm run format:check`), so eslint-config-prettier
// turns off every rule that would argue with it. A rule turned off or relaxed says why, here or in its disable comment:
// an inline `eslint-disable` needs a reason after `--` (eslint-comments/require-description), and one that no longer
// silences anything is an error (reportUnusedDisableDirectives).
// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { defineConfig } from 'eslint/config';
import comments from '@eslint-community/eslint-plugin-eslint-comments/configs';
import prettier from 'eslint-config-prettier/flat';
import globals from 'globals';

export default defineConfig(
  {
    // built, installed, downloaded or vendored: not ours to lint (lab/ and tools/ hold shell and Python)
    ignores: [
      'dist/',
      'node_modules/',
      '.tools/',
      '.tmp/',
      'coverage/',
      'out/',
      '.gl/',
      '.whl/',
      '.whl-triton/',
      '.venv-*/',
      'test/fixtures/',
      'lab/',
      'tools/',
    ],
  },
  { linterOptions: { reportUnusedDisableDirectives: 'error' } },
  js.configs.recommended,
  comments.recommended,
  { rules: { '@eslint-community/eslint-comments/require-description': 'error' } },
  {
    files: ['**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      // tsconfig.json's compiler options over src/, test/, bench/ and scripts/ (tsc --noEmit checks src/ and test/)
      parserOptions: { project: './tsconfig.eslint.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // a leading underscore marks a name unused on purpose: a callback's ignored parameter, a field dropped from a
      // copy with rest (`const { apiVersion: _a, ...body } = d`)
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // plain JavaScript (scripts/*.mjs, the config files, test/helpers/*.js, examples/): no type information
    files: ['**/*.{js,mjs,cjs}'],
    extends: [tseslint.configs.recommended],
    languageOptions: { globals: { ...globals.node } },
    rules: {
      // CommonJS files (jest.config.js, .dependency-cruiser.cjs, test/helpers/*.js) load with require
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read parsed JSON and YAML, decoded protobuf messages, HTTP bodies and jest mocks by their expected
      // shape and let expect() check it: typing each of those would restate the assertion, and a wrong shape fails
      // the test anyway. src/, bench/ and scripts/ keep these rules.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // fakes of async interfaces (Kube, the registry, a transport) answer at once from async methods: `async` keeps
      // them shaped like the real thing, a throw inside still a rejection
      '@typescript-eslint/require-await': 'off',
    },
  },
  prettier,
);
