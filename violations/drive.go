package violations

// maxBehind bounds the points kept behind the reference distance of a
// stretch: they only draw the evidence line from the highest load on.
const maxBehind = 64

// add appends p to the stretch and moves the reference: Pts[:Ref] are the
// points at least minDistM behind p, Pts[Top] the highest of them. Points
// ahead of the reference are kept one a slot (minDistM/windowSlots of
// distance, the higher load staying); points before the highest are dropped
// and those after it thinned to maxBehind, so a stretch holds a bounded
// number of points whatever its length or the reporting rate.
func (g *driveRun) add(p drivePt, minDistM float64) {
	n := len(g.Pts)
	if n > 0 && n-1 >= g.Ref && p.DistM-g.Pts[n-1].DistM < minDistM/windowSlots && !p.T.Before(g.Pts[n-1].T) {
		if p.Load > g.Pts[n-1].Load {
			g.Pts[n-1] = p
		}
	} else {
		g.Pts = append(g.Pts, p)
	}
	for g.Ref < len(g.Pts) && g.Pts[g.Ref].DistM <= p.DistM-minDistM {
		if g.Pts[g.Ref].Load > g.Pts[g.Top].Load || g.Ref == 0 {
			g.Top = g.Ref
		}
		g.Ref++
	}
	if g.Top > 0 {
		g.Pts = g.Pts[:copy(g.Pts, g.Pts[g.Top:])]
		g.Ref -= g.Top
		g.Top = 0
	}
	if g.Ref > maxBehind {
		// Keep the highest (index 0) and every other point after it.
		w := 1
		for i := 2; i < g.Ref; i += 2 {
			g.Pts[w] = g.Pts[i]
			w++
		}
		g.Pts = g.Pts[:w+copy(g.Pts[w:], g.Pts[g.Ref:])]
		g.Ref = w
	}
}
