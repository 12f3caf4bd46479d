import pkg from '../package.json';

/** modelship's version, recorded in every artifact it writes. */
export const VERSION: string = (pkg as { version: string }).version;
