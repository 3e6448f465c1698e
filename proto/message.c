/* SPDX-License-Identifier: ISC */ typedef int pme_placeholder_t;
