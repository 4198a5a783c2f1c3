/*
 * cli-tls.c - the records of `tern domain dns` about transport security
 * for mail to our domains: MTA-STS (RFC 8461) and TLS-RPT (RFC 8460).
 *
 * The MTA-STS id is the first 32 hex digits of the SHA-256 of the policy
 * the HTTPS listener serves (mtasts_policy_format, the same bytes as
 * src/http/http-autoconfig.c), so it changes exactly when the policy
 * does (mta_sts.mode, mta_sts.max_age, hostname), as RFC 8461 3.1 asks.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "cli-int.h"
#include "config.h"
#include "mta-sts.h"

void cli_domain_dns_transport(const struct config *cfg, const char *domain)
{
	char policy[600];
	size_t n = mtasts_policy_format(cfg->mta_sts_mode, cfg->hostname, cfg->mta_sts_max_age,
					policy, sizeof policy);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	char id[MTASTS_ID_MAX + 1] = "";
	if (n > 0 && EVP_Digest(policy, n, md, &mdlen, EVP_sha256(), NULL) == 1)
		for (unsigned i = 0; i < 16 && i < mdlen; i++)
			snprintf(id + 2 * i, sizeof id - 2 * i, "%02x", md[i]);
	bool served = cfg->https_listen != NULL && cfg->https_listen[0] != '\0';
	const char *c = served ? "" : "; ";
	printf("\n; MTA-STS (RFC 8461): senders that honour it deliver to %s only over\n"
	       "; TLS with a certificate valid for %s (mta_sts.mode = %s: with\n"
	       "; \"testing\" they only report failures).  mta-sts.%s must reach\n"
	       "; this server's HTTPS (https.listen) with a certificate for that name\n"
	       "; (tls.cert or tls.sni_dir); the id changes with the policy.\n",
	       domain, cfg->hostname, cfg->mta_sts_mode, domain);
	if (!served)
		printf("; (commented out: https.listen is off, so the policy is not served)\n");
	printf("%s_mta-sts.%s. IN TXT \"v=STSv1; id=%s\"\n", c, domain, id);
	printf("%smta-sts.%s. IN CNAME %s.\n", c, domain, cfg->hostname);
	printf("\n; TLS-RPT (RFC 8460): where other servers send their daily reports of\n"
	       "; TLS failures with mail to %s (read them in postmaster@%s).\n",
	       domain, domain);
	printf("_smtp._tls.%s. IN TXT \"v=TLSRPTv1; rua=mailto:postmaster@%s\"\n", domain, domain);
}
