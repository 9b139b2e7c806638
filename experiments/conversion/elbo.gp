# elbo.gp — held-out ELBO vs step, converted vs scratch (gnuplot -e "tsv='..'; png='..'").
set terminal png size 800,500
set output png
set datafile separator "\t"
set key top right
set xlabel "optimizer step"
set ylabel "held-out ELBO (nats/token, upper bound on NLL)"
set title "AR -> diffusion conversion vs diffusion from scratch (stories260K shape)"
set grid
plot tsv using 1:3 skip 1 with linespoints title "converted stories260K", \
     tsv using 1:4 skip 1 with linespoints title "from scratch"
