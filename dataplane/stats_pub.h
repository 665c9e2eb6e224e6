/* SPDX-License-Identifier: MIT
 *
 * stats_pub.h — pomaid's side of the stats segment (control/stats.h): the
 * segment is created before the workers start, each worker publishes its own
 * block every PM_STATS_PUBLISH_MS; and the tick clock its service-time
 * histograms are measured with.
 */
#ifndef POMAI_DATAPLANE_STATS_PUB_H
#define POMAI_DATAPLANE_STATS_PUB_H

#include <stddef.h>
#include <stdint.h>

struct pm_daemon;
struct pm_worker;

int pm_stats_create(struct pm_daemon *d, char *err, size_t errlen);
void pm_stats_destroy(struct pm_daemon *d);
void pm_stats_publish(struct pm_worker *w);
uint64_t pm_ticks(void);
void pm_ticks_calibrate(struct pm_worker *w);
/* One KV request served since tick `since`: its service time into lat_kv;
 * w->last_tick becomes now (the next request of a burst starts there). */
void pm_lat_kv(struct pm_worker *w, uint64_t since);

#endif
